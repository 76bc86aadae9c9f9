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
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { generateKeyAndCsr, IstioCaClient, type KeyAlgorithm } from '../src/ca/index.js';
import { systemClock } from '../src/clock.js';
import { LogRoot } from '../src/log/index.js';
import { buildClusters, CLUSTER_TYPE_URL, LocalControlPlane } from '../src/localmesh/index.js';
import { FLOW_CONTROL_WINDOW, IstiodDialer } from '../src/net/index.js';
import { ProtoSchema, SECRET_TYPE_URL, type DiscoveryRequest, type DiscoveryResponse } from '../src/proto/index.js';
import { scenarioMesh, writeVmFiles } from '../test/support/vm-files.js';
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

// ---- 20 MB CDS push: through the agent's xDS proxy vs straight from the control plane ----
console.log('\n20 MB CDS push (20,000 Clusters), request → whole response received; interleaved rounds');
cp.setResources(CLUSTER_TYPE_URL, buildClusters(20_000, 1000));
const identityCodec = (b: Buffer): Buffer => b;
const rawAds = {
  path: schema.adsService.StreamAggregatedResources.path,
  requestStream: true,
  responseStream: true,
  requestSerialize: identityCodec,
  requestDeserialize: identityCodec,
  responseSerialize: identityCodec,
  responseDeserialize: identityCodec,
};
const cdsRequest = schema.discoveryRequest.encode({
  version_info: '',
  node: { id: 'sidecar~10.0.0.1~bench.istio-demo~istio-demo.svc.cluster.local', cluster: 'bench' },
  resource_names: [],
  type_url: CLUSTER_TYPE_URL,
  response_nonce: '',
  error_detail: null,
});

async function pushOnce(client: grpc.Client, metadata: grpc.Metadata): Promise<{ ms: number; bytes: number }> {
  const started = performance.now();
  const call = client.makeBidiStreamRequest<Buffer, Buffer>(rawAds.path, identityCodec, identityCodec, metadata);
  const bytes = await new Promise<number>((resolve, reject) => {
    call.once('data', (b: Buffer) => resolve(b.length));
    call.once('error', reject);
    call.write(cdsRequest);
  });
  const ms = performance.now() - started;
  call.cancel();
  call.on('error', () => undefined);
  return { ms, bytes };
}

const xdsVm = mkdtempSync(path.join(work, 'xds-'));
writeVmFiles(xdsVm, { mesh: scenarioMesh(cp.address), rootCertPem: cp.rootCertPem, token: await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm' }) });
const xdsAgent = spawn(process.execPath, [path.join(root, 'dist/pilot-agent.js'), 'proxy'], {
  cwd: xdsVm,
  env: { PATH: process.env['PATH'] ?? '', CA_ADDR: cp.address, INSTANCE_IP: '10.0.0.1' },
  stdio: 'ignore',
});
const xdsSocket = path.join(xdsVm, 'etc/istio/proxy/XDS');
while (!existsSync(xdsSocket)) await new Promise((r) => setTimeout(r, 5));
// The bench's Envoy stand-in uses the same HTTP/2 window as the direct client, so only the hop differs.
const viaAgent = new grpc.Client(`unix://${xdsSocket}`, grpc.credentials.createInsecure(), {
  'grpc.max_receive_message_length': -1,
  'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW,
});
const directDialer = new IstiodDialer({
  config: {
    address: cp.address,
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
const directMetadata = await directDialer.metadata();
const pushRounds = Math.max(4, ROUNDS);
const directTimes: number[] = [];
const agentTimes: number[] = [];
let pushBytes = 0;
await pushOnce(direct, directMetadata); // warm both paths (TLS handshakes, JIT)
await pushOnce(viaAgent, new grpc.Metadata());
for (let i = 0; i < pushRounds; i++) {
  const d = await pushOnce(direct, directMetadata);
  const a = await pushOnce(viaAgent, new grpc.Metadata());
  directTimes.push(d.ms);
  agentTimes.push(a.ms);
  pushBytes = a.bytes;
}
const peakKb = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${xdsAgent.pid}/status`, 'utf8'))?.[1] ?? NaN);
console.log(row(`direct from the control plane (${(pushBytes / 1e6).toFixed(1)} MB)`, stats(directTimes)));
console.log(row('through the agent (unix socket → TLS upstream)', stats(agentTimes)));
console.log(`ratio through-agent/direct (mean): ${(stats(agentTimes).mean / stats(directTimes).mean).toFixed(2)}   (goal ≤ 1.10)`);
console.log(`agent peak RSS during the pushes (VmHWM): ${(peakKb / 1024).toFixed(1)} MB`);
viaAgent.close();
direct.close();
xdsAgent.kill('SIGTERM');
await new Promise((r) => xdsAgent.once('exit', r));

await cp.close();
rmSync(work, { recursive: true, force: true });
