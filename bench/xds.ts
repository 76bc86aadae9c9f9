/** xDS: a 20 MB push on an established stream, through the agent vs straight from the control plane. */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { systemClock } from '../src/clock.js';
import { CLUSTER_TYPE_URL } from '../src/localmesh/index.js';
import { FLOW_CONTROL_WINDOW, IstiodDialer } from '../src/net/index.js';
import { ProtoSchema } from '../src/proto/index.js';
import { rawMethod, SOTW_ADS_PATH } from '../src/xds/index.js';
import { scenarioMesh, writeVmFiles } from '../test/support/vm-files.js';
import { collectGarbage, cpuMs, hasTaskset, memoryMb, pin, pinSelf, quiet, root, ROUNDS, row, stats } from './common.js';

export async function benchXds(work: string): Promise<void> {
  const schema = new ProtoSchema();
  // ---- 20 MB CDS push on an established stream: through the agent's xDS proxy vs straight from the control plane ----
  // The control plane runs in its own process (istiod, the agent and Envoy never share an event loop). Each
  // path keeps one stream open, as Envoy does, and subscribes to its own type URL carrying the same 20 MB,
  // so a push reaches one path at a time. Time: push command → whole response received by the client.
  // Three paths: direct, through the agent, and through a plain TLS byte relay (the reference: the least
  // a Node hop that terminates TLS can cost, with no HTTP/2 or gRPC handling at all).
  console.log('\n20 MB push (20,000 Clusters) on an established ADS stream, push → whole response received; interleaved rounds');
  const DIRECT_TYPE = CLUSTER_TYPE_URL;
  const AGENT_TYPE = 'type.googleapis.com/envoy.config.cluster.v3.Cluster.Bench';
  const RELAY_TYPE = 'type.googleapis.com/envoy.config.cluster.v3.Cluster.Relay';
  const PUSH_TIMEOUT_MS = 30_000;
  // Pinned like a VM: istiod elsewhere (core 0), the hop and its Envoy sharing the VM (core 1). Unpinned,
  // three busy processes on two cores land differently from run to run and the ratio swings 0.7–1.6.
  pinSelf(1);
  const cpProcess = spawn(
    ...pin(0, [process.execPath, '--expose-gc', '--import', import.meta.resolve('tsx'), path.join(root, 'bench/control-plane-process.ts'), '20000', '1000', DIRECT_TYPE, AGENT_TYPE, RELAY_TYPE]),
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

  /**
   * One long-lived ADS stream; next() resolves with the size of the next whole response. A response
   * nobody waited for, or one that never comes, fails the bench instead of leaving it waiting forever.
   */
  function openStream(client: grpc.Client, metadata: grpc.Metadata, typeUrl: string) {
    const call = client.makeBidiStreamRequest(ads.path, ads.requestSerialize, ads.responseDeserialize, metadata);
    const waiting: ((bytes: number) => void)[] = [];
    let unasked = 0;
    call.on('data', (b: Buffer) => {
      const resolve = waiting.shift();
      if (resolve) resolve(b.length);
      else unasked++;
    });
    call.on('error', () => undefined);
    call.write(subscribe(typeUrl));
    return {
      next: () =>
        new Promise<number>((resolve, reject) => {
          if (unasked > 0) {
            reject(new Error(`${typeUrl}: a response arrived that no push asked for`));
            return;
          }
          const timer = setTimeout(() => reject(new Error(`${typeUrl}: no response within ${PUSH_TIMEOUT_MS / 1000} s`)), PUSH_TIMEOUT_MS);
          waiting.push((bytes) => {
            clearTimeout(timer);
            resolve(bytes);
          });
        }),
      close: () => call.cancel(),
    };
  }

  const xdsVm = mkdtempSync(path.join(work, 'xds-'));
  writeVmFiles(xdsVm, { mesh: scenarioMesh(remote.address), rootCertPem: remote.rootCertPem, token: remote.token });
  const xdsAgent = spawn(...pin(1, [process.execPath, path.join(root, 'dist/pilot-agent.js'), 'proxy']), {
    cwd: xdsVm,
    env: { PATH: process.env['PATH'] ?? '', CA_ADDR: remote.address, INSTANCE_IP: '10.0.0.1', DNS_PROXY_ADDR: '127.0.0.1:0', ISTIO_RESOLV_CONF: '/dev/null', DISABLE_ENVOY: 'true' },
    stdio: 'ignore',
  });
  const xdsSocket = path.join(xdsVm, 'etc/istio/proxy/XDS');
  while (!existsSync(xdsSocket)) await new Promise((r) => setTimeout(r, 5));
  // Every client gets the window of the agent's own upstream connection, so only the hop differs.
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
  const directMetadata = await directDialer.metadata();
  // The reference hop: a plain TLS byte relay in Node (see tls-relay-process.ts), same core as the agent.
  const relaySocket = path.join(xdsVm, 'relay.sock');
  const [cpHost = '', cpPort = ''] = remote.address.split(':');
  const relay = spawn(
    ...pin(1, [process.execPath, '--import', import.meta.resolve('tsx'), path.join(root, 'bench/tls-relay-process.ts'), relaySocket, cpHost, cpPort, 'istiod.istio-system.svc', path.join(xdsVm, 'etc/certs/root-cert.pem')]),
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise((resolve) => createInterface({ input: relay.stdout }).once('line', resolve));
  const viaRelay = new grpc.Client(`unix://${relaySocket}`, grpc.credentials.createInsecure(), clientOptions);

  const paths = {
    direct: { typeUrl: DIRECT_TYPE, stream: openStream(direct, directMetadata, DIRECT_TYPE), hopPid: undefined },
    agent: { typeUrl: AGENT_TYPE, stream: openStream(viaAgent, new grpc.Metadata(), AGENT_TYPE), hopPid: xdsAgent.pid },
    relay: { typeUrl: RELAY_TYPE, stream: openStream(viaRelay, directMetadata, RELAY_TYPE), hopPid: relay.pid },
  };
  type PathName = keyof typeof paths;
  const names = Object.keys(paths) as PathName[];
  // The initial responses (connections up). Wait for all three at once: a response that arrives while
  // nobody waits for it would be dropped, and the next wait on that stream would never end.
  const [pushBytes = 0] = await Promise.all(names.map((name) => paths[name].stream.next()));

  /**
   * One push, timed on the wall clock shared by all processes. Total: the control plane starts preparing →
   * whole response at the client. Delivery: the control plane has handed the push to its socket → whole
   * response at the client. Both processes of the bench side collect garbage first, so neither pays for
   * the previous round's; the hop is left alone (its collections are part of the hop's cost).
   */
  async function timedPush(name: PathName): Promise<{ totalMs: number; cpMs: number; deliveryMs: number }> {
    const received = paths[name].stream.next();
    cpProcess.stdin.write(`push ${paths[name].typeUrl}\n`);
    const [, cpMs, cpStartWall, cpDoneWall] = (await cpLine()).split(' ');
    await received;
    const done = performance.timeOrigin + performance.now();
    return { totalMs: done - Number(cpStartWall), cpMs: Number(cpMs), deliveryMs: done - Number(cpDoneWall) };
  }
  const pushRounds = Math.max(20, ROUNDS);
  const results = Object.fromEntries(names.map((name) => [name, { total: [] as number[], delivery: [] as number[], cp: [] as number[], clientCpu: 0, hopCpu: 0 }])) as Record<
    PathName,
    { total: number[]; delivery: number[]; cp: number[]; clientCpu: number; hopCpu: number }
  >;
  // The first rounds warm the JIT in every process and are left out, as a VM's agent runs for days;
  // what they cost the agent is printed on a line of its own.
  const WARMUP_ROUNDS = 3;
  const warmup = { agentCpu: 0, agentTotal: [] as number[] };
  for (let i = -WARMUP_ROUNDS; i < pushRounds; i++) {
    // Rotate which path goes first, so none always follows another's garbage.
    const order = names.map((_, k) => names[(i + WARMUP_ROUNDS + k) % names.length] as PathName);
    for (const name of order) {
      collectGarbage();
      const hopPid = paths[name].hopPid;
      const clientBefore = cpuMs(process.pid);
      const hopBefore = hopPid ? cpuMs(hopPid) : 0;
      const result = await timedPush(name);
      const clientCpu = cpuMs(process.pid) - clientBefore;
      const hopCpu = hopPid ? cpuMs(hopPid) - hopBefore : 0;
      if (i < 0) {
        if (name === 'agent') {
          warmup.agentCpu += hopCpu;
          warmup.agentTotal.push(result.totalMs);
        }
        continue;
      }
      const into = results[name];
      into.clientCpu += clientCpu;
      into.hopCpu += hopCpu;
      into.total.push(result.totalMs);
      into.delivery.push(result.deliveryMs);
      into.cp.push(result.cpMs);
    }
  }
  // Round k's push on each path is element k of its totals.
  const pairRatios = (name: 'agent' | 'relay') => results[name].total.map((ms, k) => ms / (results.direct.total[k] ?? NaN));
  const peakMb = memoryMb(xdsAgent.pid, 'VmHWM');
  const total = (name: PathName) => stats(results[name].total);
  const delivery = (name: PathName) => stats(results[name].delivery);
  console.log(row(`direct from the control plane (${(pushBytes / 1e6).toFixed(1)} MB)`, total('direct')));
  console.log(row('through the agent (TLS upstream → unix socket)', total('agent')));
  console.log(row('through a plain TLS relay (reference)', total('relay')));
  for (const name of names) console.log(row(`  the control plane preparing each push, ${name}`, stats(results[name].cp)));
  for (const name of names) console.log(row(`delivery only, ${name}`, delivery(name)));
  const perPush = (ms: number) => `${(ms / pushRounds).toFixed(0)} ms`;
  console.log(
    `CPU per push on the VM's core: direct, client ${perPush(results.direct.clientCpu)}; through the agent, agent ${perPush(results.agent.hopCpu)} + client ${perPush(results.agent.clientCpu)}; through the relay, relay ${perPush(results.relay.hopCpu)} + client ${perPush(results.relay.clientCpu)}`,
  );
  for (const name of ['agent', 'relay'] as const) {
    const label = name === 'agent' ? 'through-agent/direct' : 'through-relay/direct (reference)';
    console.log(`ratio ${label}, push → received: median of ${pushRounds} rounds ${stats(pairRatios(name)).p50.toFixed(2)}, of means ${(total(name).mean / total('direct').mean).toFixed(2)}${name === 'agent' ? '   (goal ≤ 1.10)' : ''}`);
    console.log(`ratio ${label}, delivery only: of medians ${(delivery(name).p50 / delivery('direct').p50).toFixed(2)}, of means ${(delivery(name).mean / delivery('direct').mean).toFixed(2)}`);
  }
  console.log(
    `left out, the ${WARMUP_ROUNDS} warm-up rounds: through the agent mean ${stats(warmup.agentTotal).mean.toFixed(1)} ms, agent CPU ${(warmup.agentCpu / WARMUP_ROUNDS).toFixed(0)} ms per push`,
  );
  console.log(hasTaskset ? 'pinned: control plane on core 0; the agent, the relay and the client on core 1' : 'not pinned (no taskset): expect wide run-to-run variation');
  console.log(`agent peak RSS (VmHWM) over its whole run, pushes included: ${peakMb.toFixed(1)} MB`);
  for (const { stream } of Object.values(paths)) stream.close();
  viaAgent.close();
  viaRelay.close();
  direct.close();
  relay.kill('SIGTERM');
  xdsAgent.kill('SIGTERM');
  await new Promise((r) => xdsAgent.once('exit', r));
  cpProcess.stdin.end();
  await new Promise((r) => cpProcess.once('exit', r));

}
