/** Identity: key + CSR and issuance latency (RSA vs ECDSA), and start → first certificate over SDS. */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { generateKeyAndCsr, IstioCaClient, type KeyAlgorithm } from '../src/ca/index.js';
import { systemClock } from '../src/clock.js';
import { LocalControlPlane } from '../src/localmesh/index.js';
import { ProtoSchema, SECRET_TYPE_URL, type DiscoveryRequest, type DiscoveryResponse } from '../src/proto/index.js';
import { scenarioMesh, writeVmFiles } from '../test/support/vm-files.js';
import { memoryMb, quiet, root, ROUNDS, row, stats } from './common.js';

export async function benchIdentity(work: string): Promise<void> {
  const schema = new ProtoSchema();
  const cp = new LocalControlPlane({ schema });
  await cp.start();
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
    const agent = spawn(process.execPath, [...command, 'proxy'], { cwd: vm, env: { PATH: process.env['PATH'] ?? '', CA_ADDR: cp.address, INSTANCE_IP: '10.0.0.1', DNS_PROXY_ADDR: '127.0.0.1:0', ISTIO_RESOLV_CONF: '/dev/null', DISABLE_ENVOY: 'true' }, stdio: 'ignore' });
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
    const rssKb = memoryMb(agent.pid, 'VmRSS') * 1024;
    client.close();
    agent.kill('SIGTERM');
    await new Promise((r) => agent.once('exit', r));
    return { ms, rssKb };
  }

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
  await cp.close();
}
