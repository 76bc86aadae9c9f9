/**
 * `npm run demo`: the agent against the embedded local control plane, on this machine, unprivileged.
 *
 *  1. starts the local control plane (CA + ADS over TLS on 127.0.0.1),
 *  2. lays out the files `istioctl x workload entry configure` writes, in a temporary directory that
 *     stands in for the VM's `/` (cluster.env, mesh config, root-cert.pem, istio-token),
 *  3. runs the real agent (`pilot-agent proxy`) there, its Istio-format log on this terminal,
 *  4. plays Envoy's part: asks the agent's SDS socket for `default` and `ROOTCA` and prints what it got,
 *  5. resolves nginx.example.com through the agent's DNS proxy (the scenario's ServiceEntry VIP),
 *  6. shows the WorkloadEntry the control plane registered for the VM, healthy once the probe passes.
 *
 * It keeps running (certificates rotate every SECRET_TTL/2) until Ctrl-C; `--once` stops after step 4.
 * The local control plane is a development/test stand-in for istiod, not a replacement for it.
 */
import { X509Certificate } from 'node:crypto';
import { spawn } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { isWorkloadEntryHealthy, LocalControlPlane } from '../src/localmesh/index.js';
import { ProtoSchema, SECRET_TYPE_URL, type DiscoveryRequest, type DiscoveryResponse } from '../src/proto/index.js';
import { scenarioMesh, writeVmFiles } from '../test/support/vm-files.js';
import { freePort } from '../test/support/ports.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const once = process.argv.includes('--once');
const ttl = process.env['SECRET_TTL'] ?? (once ? '24h' : '60s');


function say(text: string): void {
  process.stderr.write(`\x1b[36m[demo]\x1b[0m ${text}\n`);
}

const cp = new LocalControlPlane({ httpPort: 0 });
await cp.start();
say(`local control plane (CA + ADS, TLS) listening on ${cp.address}, trust domain ${cp.trustDomain}`);
// The cluster side of the story: WorkloadGroup nginx and the ServiceEntries, as an operator applies them.
const scenarioYaml = path.join(root, 'test/fixtures/localmesh/scenario.yaml');
await cp.loadYamlFile(scenarioYaml);
say(`applied ${path.relative(root, scenarioYaml)}: nginx.example.com → ${cp.allocatedAddresses('nginx.example.com').join(', ')} (auto-allocated)`);

const vm = mkdtempSync(path.join(os.tmpdir(), 'istio-vm-demo-'));
const token = await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm', ttlSeconds: 3600 });
writeVmFiles(vm, { mesh: scenarioMesh(cp.address), rootCertPem: cp.rootCertPem, token });
say(`VM files written under ${vm} (cluster.env, etc/istio/config/mesh, etc/certs/root-cert.pem, istio-token)`);

// The DNS proxy on a free loopback port (15053 needs the iptables capture to be reached by `ping`).
const dnsPort = await freePort();
// The VM's "nginx", and the scenario's readiness probe pointed at it (the WorkloadGroup probes port 80).
const nginx = createHttpServer((_req, res) => res.end('hello from the VM\n'));
await new Promise<void>((resolve) => nginx.listen(0, '127.0.0.1', resolve));
const nginxPort = (nginx.address() as AddressInfo).port;
const probe = `readinessProbe:\n  httpGet: {host: 127.0.0.1, port: ${nginxPort}}\n  periodSeconds: 2\n`;
say(`"nginx" on 127.0.0.1:${nginxPort}; the readiness probe checks it every 2 s`);
const agent = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'src/main.ts'), 'proxy'], {
  cwd: vm,
  env: {
    ...process.env,
    CA_ADDR: cp.address,
    SECRET_TTL: ttl,
    DISABLE_ENVOY: 'true',
    DNS_PROXY_ADDR: `127.0.0.1:${dnsPort}`,
    PROXY_CONFIG: `serviceCluster: nginx.istio-demo\n${probe}`,
  },
  stdio: ['ignore', 'inherit', 'inherit'],
});

let finished = false;
async function finish(code: number): Promise<void> {
  if (finished) return;
  finished = true;
  if (agent.exitCode === null) {
    agent.kill('SIGTERM');
    await new Promise((r) => agent.once('exit', r));
  }
  await cp.close();
  nginx.close();
  rmSync(vm, { recursive: true, force: true });
  process.exit(code);
}
process.on('SIGINT', () => void finish(0));
process.on('SIGTERM', () => void finish(0));
agent.once('exit', (code) => {
  if (!finished) {
    say(`agent exited with code ${code}`);
    void finish(code ?? 1);
  }
});

// Play Envoy: one SDS stream per secret, as Envoy opens them.
const schema = new ProtoSchema();
const socket = path.join(vm, 'var/run/secrets/workload-spiffe-uds/socket');
const client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
const node = { id: `sidecar~127.0.0.1~demo.istio-demo~istio-demo.svc.cluster.local`, cluster: 'nginx.istio-demo' };
const seen = new Set<string>();
let resolved = false;

let registered = false;

/** What istiod's auto-registration makes of the VM: WorkloadEntry nginx-<ip>, healthy once the probe passes. */
async function showWorkloadEntry(): Promise<void> {
  const entry = await cp.waitForWorkloadEntry((e) => isWorkloadEntryHealthy(e), 60_000);
  say(
    `WorkloadEntry ${entry.metadata.namespace}/${entry.metadata.name}: address ${entry.spec.address}, ` +
      `serviceAccount ${entry.spec.serviceAccount ?? ''}, labels ${JSON.stringify(entry.metadata.labels)}, Healthy=True`,
  );
  say(`  (as kubectl would show it: curl '${cp.httpAddress}/apis/networking.istio.io/v1/namespaces/istio-demo/workloadentries?format=yaml')`);
  registered = true;
  maybeFinish();
}

/** With --once: stop when Envoy (played here) has both secrets, DNS has answered and the VM is registered. */
function maybeFinish(): void {
  if (!once || !seen.has('default') || !seen.has('ROOTCA') || !resolved || !registered) return;
  say('certificate served over SDS, mesh DNS answered, WorkloadEntry registered and healthy: demo complete');
  client.close();
  void finish(0);
}

/** What `ping nginx.example.com` on the VM gets: the agent's DNS proxy answers from istiod's NameTable. */
async function resolveThroughAgent(): Promise<void> {
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([`127.0.0.1:${dnsPort}`]);
  for (;;) {
    try {
      const addresses = await resolver.resolve4('nginx.example.com');
      say(`DNS through the agent (127.0.0.1:${dnsPort}): nginx.example.com → ${addresses.join(', ')}`);
      resolved = true;
      maybeFinish();
      return;
    } catch {
      if (finished) return;
      await new Promise((r) => setTimeout(r, 300)); // the table arrives with the agent's first xDS stream
    }
  }
}

function watch(name: string): void {
  const method = schema.sdsService.StreamSecrets;
  const call = client.makeBidiStreamRequest<DiscoveryRequest, DiscoveryResponse>(method.path, method.requestSerialize, method.responseDeserialize);
  call.on('data', (response: DiscoveryResponse) => {
    for (const any of response.resources) {
      const secret = schema.secret.decode(any.value);
      const pem = secret.tls_certificate?.certificate_chain?.inline_bytes ?? secret.validation_context?.trusted_ca?.inline_bytes;
      const cert = pem ? new X509Certificate(pem) : undefined;
      say(`Envoy received SDS secret "${secret.name}": ${cert ? `serial ${cert.serialNumber}, ${cert.subjectAltName ?? cert.subject.replace(/\n/g, ', ')}, valid until ${cert.validTo}` : 'empty'}`);
      seen.add(secret.name);
    }
    call.write({ version_info: response.version_info, node: null, resource_names: [name], type_url: SECRET_TYPE_URL, response_nonce: response.nonce, error_detail: null });
    maybeFinish();
  });
  call.on('error', () => {
    // The socket is not there yet, or the agent is restarting: Envoy retries, and so do we.
    if (!finished) setTimeout(() => watch(name), 500).unref();
  });
  call.write({ version_info: '', node, resource_names: [name], type_url: SECRET_TYPE_URL, response_nonce: '', error_detail: null });
}
setTimeout(() => {
  watch('default');
  watch('ROOTCA');
  void resolveThroughAgent();
  void showWorkloadEntry().catch((err: unknown) => say(`no healthy WorkloadEntry: ${String(err)}`));
}, 300);
if (!once) say(`running; certificates rotate every ${ttl} / 2. Ctrl-C to stop.`);
