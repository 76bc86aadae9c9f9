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
  console.log('\n20 MB push (20,000 Clusters) on an established ADS stream, push → whole response received; interleaved rounds');
  const DIRECT_TYPE = CLUSTER_TYPE_URL;
  const AGENT_TYPE = 'type.googleapis.com/envoy.config.cluster.v3.Cluster.Bench';
  // Pinned like a VM: istiod elsewhere (core 0), the agent and its Envoy sharing the VM (core 1). Unpinned,
  // three busy processes on two cores land differently from run to run and the ratio swings 0.7–1.6.
  pinSelf(1);
  const cpProcess = spawn(
    ...pin(0, [process.execPath, '--expose-gc', '--import', import.meta.resolve('tsx'), path.join(root, 'bench/control-plane-process.ts'), '20000', '1000', DIRECT_TYPE, AGENT_TYPE]),
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
    env: { PATH: process.env['PATH'] ?? '', CA_ADDR: remote.address, INSTANCE_IP: '10.0.0.1', DNS_PROXY_ADDR: '127.0.0.1:0', ISTIO_RESOLV_CONF: '/dev/null', DISABLE_ENVOY: 'true' },
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

  /**
   * One push, timed on the wall clock shared by all processes. Total: the control plane starts preparing →
   * whole response at the client. Delivery: the control plane has handed the push to its socket → whole
   * response at the client. Both processes of the bench side collect garbage first, so neither pays for
   * the previous round's; the agent is left alone (its collections are part of the hop's cost).
   */
  async function timedPush(stream: ReturnType<typeof openStream>, typeUrl: string): Promise<{ totalMs: number; cpMs: number; deliveryMs: number }> {
    const received = stream.next();
    cpProcess.stdin.write(`push ${typeUrl}\n`);
    const [, cpMs, cpStartWall, cpDoneWall] = (await cpLine()).split(' ');
    await received;
    const done = performance.timeOrigin + performance.now();
    return { totalMs: done - Number(cpStartWall), cpMs: Number(cpMs), deliveryMs: done - Number(cpDoneWall) };
  }
  const pushRounds = Math.max(20, ROUNDS);
  const direct_ = { total: [] as number[], delivery: [] as number[], clientCpu: 0 };
  const agent_ = { total: [] as number[], delivery: [] as number[], clientCpu: 0, agentCpu: 0 };
  const cpTimes = { direct: [] as number[], agent: [] as number[] };
  const pairRatios: number[] = [];
  for (let i = 0; i < pushRounds; i++) {
    // Alternate which path goes first, so neither always follows the other's garbage.
    const order = i % 2 === 0 ? (['direct', 'agent'] as const) : (['agent', 'direct'] as const);
    const round: Record<'direct' | 'agent', number> = { direct: 0, agent: 0 };
    for (const path_ of order) {
      collectGarbage();
      const clientBefore = cpuMs(process.pid);
      const agentBefore = cpuMs(xdsAgent.pid);
      const result = path_ === 'direct' ? await timedPush(directStream, DIRECT_TYPE) : await timedPush(agentStream, AGENT_TYPE);
      const into = path_ === 'direct' ? direct_ : agent_;
      into.clientCpu += cpuMs(process.pid) - clientBefore;
      if (path_ === 'agent') agent_.agentCpu += cpuMs(xdsAgent.pid) - agentBefore;
      into.total.push(result.totalMs);
      into.delivery.push(result.deliveryMs);
      cpTimes[path_].push(result.cpMs);
      round[path_] = result.totalMs;
    }
    pairRatios.push(round.agent / round.direct);
  }
  const peakMb = memoryMb(xdsAgent.pid, 'VmHWM');
  const directTotal = stats(direct_.total);
  const agentTotal = stats(agent_.total);
  const directDelivery = stats(direct_.delivery);
  const agentDelivery = stats(agent_.delivery);
  console.log(row(`direct from the control plane (${(pushBytes / 1e6).toFixed(1)} MB)`, directTotal));
  console.log(row('through the agent (TLS upstream → unix socket)', agentTotal));
  console.log(row('  the control plane preparing each push, direct', stats(cpTimes.direct)));
  console.log(row('  the control plane preparing each push, agent', stats(cpTimes.agent)));
  console.log(row('delivery only, direct', directDelivery));
  console.log(row('delivery only, through the agent', agentDelivery));
  const perPush = (ms: number) => `${(ms / pushRounds).toFixed(0)} ms`;
  console.log(`CPU per push on the VM's core: direct, client ${perPush(direct_.clientCpu)}; through the agent, agent ${perPush(agent_.agentCpu)} + client ${perPush(agent_.clientCpu)}`);
  console.log(`ratio through-agent/direct, push → received: median of ${pushRounds} paired rounds ${stats(pairRatios).p50.toFixed(2)}, of means ${(agentTotal.mean / directTotal.mean).toFixed(2)}   (goal ≤ 1.10)`);
  console.log(`ratio through-agent/direct, delivery only: of medians ${(agentDelivery.p50 / directDelivery.p50).toFixed(2)}, of means ${(agentDelivery.mean / directDelivery.mean).toFixed(2)}`);
  console.log(hasTaskset ? 'pinned: control plane on core 0; agent and client on core 1' : 'not pinned (no taskset): expect wide run-to-run variation');
  console.log(`agent peak RSS (VmHWM) over its whole run, pushes included: ${peakMb.toFixed(1)} MB`);
  directStream.close();
  agentStream.close();
  viaAgent.close();
  direct.close();
  xdsAgent.kill('SIGTERM');
  await new Promise((r) => xdsAgent.once('exit', r));
  cpProcess.stdin.end();
  await new Promise((r) => cpProcess.once('exit', r));

}
