/**
 * `npm run bench`: figures, not pass/fail. Everything is measured side by side in this one run, because
 * these machines are noisy: compare the rows, don't read absolute numbers against another day's.
 *
 *  - CSR + issuance latency, RSA 2048 vs ECDSA P-256 (key+CSR generation, and the CreateCertificate call
 *    to the local control plane over TLS).
 *  - Process start → first certificate served over SDS, for the built bundle (dist/) and for tsx from
 *    source, and the agent's RSS once it is serving.
 *  - A 20 MB CDS push delivered through the agent's xDS proxy vs straight from the control plane, in
 *    interleaved rounds, as a ratio; and the agent's peak RSS meanwhile.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { generateKeyAndCsr, IstioCaClient, type KeyAlgorithm } from '../src/ca/index.js';
import { systemClock } from '../src/clock.js';
import { LogRoot } from '../src/log/index.js';
import { CLUSTER_TYPE_URL, LocalControlPlane } from '../src/localmesh/index.js';
import { FLOW_CONTROL_WINDOW, IstiodDialer } from '../src/net/index.js';
import { ProtoSchema, SECRET_TYPE_URL, type DiscoveryRequest, type DiscoveryResponse } from '../src/proto/index.js';
import { scenarioMesh, writeVmFiles } from '../test/support/vm-files.js';
import { rawMethod, SOTW_ADS_PATH } from '../src/xds/index.js';
import { Writable } from 'node:stream';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 10);

function stats(samples: number[]): { mean: number; p50: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  return { mean, p50: sorted[Math.floor(sorted.length / 2)] ?? NaN, max: sorted.at(-1) ?? NaN };
}

function row(label: string, s: { mean: number; p50: number; max: number }, unit = 'ms'): string {
  return `${label.padEnd(44)} mean ${s.mean.toFixed(1).padStart(8)} ${unit}   p50 ${s.p50.toFixed(1).padStart(8)} ${unit}   max ${s.max.toFixed(1).padStart(8)} ${unit}`;
}

const quiet = new LogRoot({ asJson: false, outputLevel: 'all:none', target: 'stdout' }, new Writable({ write: (_c, _e, done) => done() }));
const schema = new ProtoSchema();
const cp = new LocalControlPlane({ schema });
await cp.start();
const work = mkdtempSync(path.join(os.tmpdir(), 'ivma-bench-'));

async function issuance(algorithm: KeyAlgorithm): Promise<{ csr: number[]; sign: number[] }> {
  const dir = mkdtempSync(path.join(work, 'ca-'));
  writeVmFiles(dir, { rootCertPem: cp.rootCertPem, token: await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm' }) });
  const client = new IstioCaClient({
    config: {
      address: cp.address,
      plaintext: false,
      rootCertPath: path.join(dir, 'etc/certs/root-cert.pem'),
      serverName: 'istiod.istio-system.svc',
      tokenPath: path.join(dir, 'var/run/secrets/tokens/istio-token'),
      headers: { ClusterID: 'Kubernetes' },
      provider: 'Citadel',
      certSigner: '',
    },
    provCertDir: '',
    schema,
    clock: systemClock,
    log: quiet.scope('citadelclient'),
    retryLog: quiet.scope('ca'),
  });
  const csr: number[] = [];
  const sign: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    let t = performance.now();
    const { csrPem } = await generateKeyAndCsr({ spiffeId: 'spiffe://cluster.local/ns/istio-demo/sa/vm', algorithm, pkcs8: false });
    csr.push(performance.now() - t);
    t = performance.now();
    await client.sign(csrPem, 3600);
    sign.push(performance.now() - t);
  }
  return { csr, sign };
}

async function startToFirstCert(command: string[]): Promise<{ ms: number; rssKb: number }> {
  const vm = mkdtempSync(path.join(work, 'vm-'));
  writeVmFiles(vm, { mesh: scenarioMesh(cp.address), rootCertPem: cp.rootCertPem, token: await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm' }) });
  const started = performance.now();
  const agent = spawn(process.execPath, [...command, 'proxy'], { cwd: vm, env: { PATH: process.env['PATH'] ?? '', CA_ADDR: cp.address, INSTANCE_IP: '10.0.0.1' }, stdio: 'ignore' });
  const socket = path.join(vm, 'var/run/secrets/workload-spiffe-uds/socket');
  // Connect only once the socket exists: a failed connect would put grpc-js into its 1 s reconnect backoff.
  while (!existsSync(socket)) await new Promise((r) => setTimeout(r, 2));
  const client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
  const method = schema.sdsService.StreamSecrets;
  let done = false;
  const ms = await new Promise<number>((resolve) => {
    const attempt = () => {
      const call = client.makeBidiStreamRequest<DiscoveryRequest, DiscoveryResponse>(method.path, method.requestSerialize, method.responseDeserialize);
      call.on('data', () => {
        done = true;
        resolve(performance.now() - started);
        call.cancel();
      });
      // Until the agent has bound its socket, connecting fails: poll, as Envoy's SDS retry does.
      call.on('error', () => {
        if (!done) setTimeout(attempt, 5);
      });
      call.write({ version_info: '', node: { id: 'bench', cluster: 'bench' }, resource_names: ['default'], type_url: SECRET_TYPE_URL, response_nonce: '', error_detail: null });
    };
    attempt();
  });
  const status = readFileSync(`/proc/${agent.pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  client.close();
  agent.kill('SIGTERM');
  await new Promise((r) => agent.once('exit', r));
  return { ms, rssKb };
}

console.log(`istio-vm-agent benchmarks (${ROUNDS} rounds each; node ${process.version}; ${os.cpus().length} cores)\n`);
console.log('Key + CSR generation and issuance (CreateCertificate over TLS to the local control plane)');
const rsa = await issuance({ kind: 'RSA', bits: 2048 });
const ec = await issuance({ kind: 'EC', curve: 'P256' });
console.log(row('RSA 2048 key + CSR', stats(rsa.csr)));
console.log(row('ECDSA P-256 key + CSR', stats(ec.csr)));
console.log(row('CreateCertificate (RSA CSR)', stats(rsa.sign)));
console.log(row('CreateCertificate (ECDSA CSR)', stats(ec.sign)));
console.log(`ratio RSA/ECDSA total issuance latency: ${((stats(rsa.csr).mean + stats(rsa.sign).mean) / (stats(ec.csr).mean + stats(ec.sign).mean)).toFixed(1)}x\n`);

console.log('Process start → first certificate served over SDS (RSA, default settings), and RSS then');
execFileSync(process.execPath, ['--import', 'tsx', path.join(root, 'scripts/build.ts')], { stdio: 'ignore' });
const variants: [string, string[]][] = [
  ['built bundle (node dist/pilot-agent.js)', [path.join(root, 'dist/pilot-agent.js')]],
  ['from source (node --import tsx src/main.ts)', ['--import', import.meta.resolve('tsx'), path.join(root, 'src/main.ts')]],
];
const startRounds = Math.max(3, Math.floor(ROUNDS / 2));
for (const [label, command] of variants) {
  const times: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < startRounds; i++) {
    const r = await startToFirstCert(command);
    times.push(r.ms);
    rss.push(r.rssKb / 1024);
  }
  console.log(row(label, stats(times)));
  console.log(row('  agent RSS once serving', stats(rss), 'MB'));
}

// ---- 20 MB CDS push on an established stream: through the agent's xDS proxy vs straight from the control plane ----
// The control plane runs in its own process (istiod, the agent and Envoy never share an event loop). Each
// path keeps one stream open, as Envoy does, and subscribes to its own type URL carrying the same 20 MB,
// so a push reaches one path at a time. Time: push command → whole response received by the client.
console.log('\n20 MB push (20,000 Clusters) on an established ADS stream, push → whole response received; interleaved rounds');
const DIRECT_TYPE = CLUSTER_TYPE_URL;
const AGENT_TYPE = 'type.googleapis.com/envoy.config.cluster.v3.Cluster.Bench';
// Pinned like a VM: istiod elsewhere (core 0), the agent and its Envoy sharing the VM (core 1). Unpinned,
// three busy processes on two cores land differently from run to run and the ratio swings 0.7–1.6.
const pin = (core: number, command: string[]): [string, string[]] =>
  hasTaskset ? ['taskset', ['-c', String(core), ...command]] : [command[0] ?? '', command.slice(1)];
const hasTaskset = spawnSync('taskset', ['-p', '-c', '1', String(process.pid)], { stdio: 'ignore' }).status === 0;
const cpProcess = spawn(
  ...pin(0, [process.execPath, '--import', import.meta.resolve('tsx'), path.join(root, 'bench/control-plane-process.ts'), '20000', '1000', DIRECT_TYPE, AGENT_TYPE]),
  { stdio: ['pipe', 'pipe', 'inherit'] },
);
const cpLines = createInterface({ input: cpProcess.stdout });
const cpLine = () => new Promise<string>((resolve) => cpLines.once('line', resolve));
const remote = JSON.parse(await cpLine()) as { address: string; rootCertPem: string; token: string };

const ads = rawMethod(SOTW_ADS_PATH);
const subscribe = (typeUrl: string) =>
  schema.discoveryRequest.encode({
    version_info: '',
    node: { id: 'sidecar~10.0.0.1~bench.istio-demo~istio-demo.svc.cluster.local', cluster: 'bench' },
    resource_names: [],
    type_url: typeUrl,
    response_nonce: '',
    error_detail: null,
  });

/** One long-lived ADS stream; next() resolves with the size of the next whole response. */
function openStream(client: grpc.Client, metadata: grpc.Metadata, typeUrl: string) {
  const call = client.makeBidiStreamRequest(ads.path, ads.requestSerialize, ads.responseDeserialize, metadata);
  const waiting: ((bytes: number) => void)[] = [];
  call.on('data', (b: Buffer) => waiting.shift()?.(b.length));
  call.on('error', () => undefined);
  call.write(subscribe(typeUrl));
  return {
    next: () => new Promise<number>((resolve) => waiting.push(resolve)),
    close: () => call.cancel(),
  };
}

const xdsVm = mkdtempSync(path.join(work, 'xds-'));
writeVmFiles(xdsVm, { mesh: scenarioMesh(remote.address), rootCertPem: remote.rootCertPem, token: remote.token });
const xdsAgent = spawn(...pin(1, [process.execPath, path.join(root, 'dist/pilot-agent.js'), 'proxy']), {
  cwd: xdsVm,
  env: { PATH: process.env['PATH'] ?? '', CA_ADDR: remote.address, INSTANCE_IP: '10.0.0.1' },
  stdio: 'ignore',
});
const xdsSocket = path.join(xdsVm, 'etc/istio/proxy/XDS');
while (!existsSync(xdsSocket)) await new Promise((r) => setTimeout(r, 5));
// The Envoy stand-in gets the same HTTP/2 window as the direct client, so only the hop differs.
const clientOptions = { 'grpc.max_receive_message_length': -1, 'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW };
const viaAgent = new grpc.Client(`unix://${xdsSocket}`, grpc.credentials.createInsecure(), clientOptions);
const directDialer = new IstiodDialer({
  config: {
    address: remote.address,
    plaintext: false,
    rootCertPath: path.join(xdsVm, 'etc/certs/root-cert.pem'),
    serverName: 'istiod.istio-system.svc',
    tokenPath: path.join(xdsVm, 'var/run/secrets/tokens/istio-token'),
    headers: { ClusterID: 'Kubernetes' },
  },
  provCertDir: '',
  clock: systemClock,
  log: quiet.scope('xdsproxy'),
  rootMissing: (_a, f) => `missing ${f}`,
});
const direct = await directDialer.newClient();
const directStream = openStream(direct, await directDialer.metadata(), DIRECT_TYPE);
const agentStream = openStream(viaAgent, new grpc.Metadata(), AGENT_TYPE);
const pushBytes = await directStream.next(); // the initial responses: connections and JIT warm
await agentStream.next();

/** Total: push command → whole response. Delivery: control plane done writing → whole response (same wall clock). */
async function timedPush(stream: ReturnType<typeof openStream>, typeUrl: string): Promise<{ ms: number; cpMs: number; deliveryMs: number }> {
  const received = stream.next();
  const started = performance.now();
  cpProcess.stdin.write(`push ${typeUrl}\n`);
  const [, cpMs, cpDoneWall] = (await cpLine()).split(' ');
  await received;
  const done = performance.now();
  return { ms: done - started, cpMs: Number(cpMs), deliveryMs: performance.timeOrigin + done - Number(cpDoneWall) };
}
const pushRounds = Math.max(4, ROUNDS);
const directTimes: number[] = [];
const agentTimes: number[] = [];
const directDelivery: number[] = [];
const agentDelivery: number[] = [];
const cpTimes: number[] = [];
for (let i = 0; i < pushRounds; i++) {
  const d = await timedPush(directStream, DIRECT_TYPE);
  const a = await timedPush(agentStream, AGENT_TYPE);
  directTimes.push(d.ms);
  agentTimes.push(a.ms);
  directDelivery.push(d.deliveryMs);
  agentDelivery.push(a.deliveryMs);
  cpTimes.push(d.cpMs, a.cpMs);
}
const peakKb = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${xdsAgent.pid}/status`, 'utf8'))?.[1] ?? NaN);
console.log(row(`direct from the control plane (${(pushBytes / 1e6).toFixed(1)} MB)`, stats(directTimes)));
console.log(row('through the agent (TLS upstream → unix socket)', stats(agentTimes)));
console.log(row('  the control plane preparing each push', stats(cpTimes)));
console.log(row('delivery only, direct', stats(directDelivery)));
console.log(row('delivery only, through the agent', stats(agentDelivery)));
console.log(`ratio through-agent/direct, push → received (mean): ${(stats(agentTimes).mean / stats(directTimes).mean).toFixed(2)}   (goal ≤ 1.10)`);
console.log(`ratio through-agent/direct, delivery only (mean):  ${(stats(agentDelivery).mean / stats(directDelivery).mean).toFixed(2)}`);
console.log(hasTaskset ? 'pinned: control plane on core 0; agent and client on core 1' : 'not pinned (no taskset): expect wide run-to-run variation');
console.log(`agent peak RSS (VmHWM) over its whole run, pushes included: ${(peakKb / 1024).toFixed(1)} MB`);
directStream.close();
agentStream.close();
viaAgent.close();
direct.close();
xdsAgent.kill('SIGTERM');
await new Promise((r) => xdsAgent.once('exit', r));
cpProcess.stdin.end();
await new Promise((r) => cpProcess.once('exit', r));

await cp.close();
rmSync(work, { recursive: true, force: true });
