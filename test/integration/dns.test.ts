import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { LocalControlPlane } from '../../src/localmesh/index.js';
import { ProtoSchema, toStruct } from '../../src/proto/index.js';
import { LISTENER_TYPE_URL, rawMethod, SOTW_ADS_PATH } from '../../src/xds/index.js';
import { AgentProcess } from '../support/agent-process.js';
import { TestStream } from '../support/stream-client.js';
import { TempDirs } from '../support/tmp.js';
import { fakeEnvoyMeshOptions, scenarioMesh, writeVmFiles } from '../support/vm-files.js';

const SCENARIO_YAML = fileURLToPath(new URL('../fixtures/localmesh/scenario.yaml', import.meta.url));

/** `dig` against the agent: answer lines (+short) and the status. */
function dig(port: number, name: string, options: { tcp?: boolean } = {}): { answers: string[]; status: string } {
  const args = ['@127.0.0.1', '-p', String(port), name, 'A', '+time=2', '+tries=1', ...(options.tcp ? ['+tcp'] : [])];
  const out = spawnSync('dig', args, { encoding: 'utf8' }).stdout;
  const status = /status: (\w+)/.exec(out)?.[1] ?? 'NO RESPONSE';
  const section = out.split(';; ANSWER SECTION:')[1]?.split('\n\n')[0] ?? '';
  const answers = section
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.split(/\s+/).at(-1) ?? '');
  return { answers, status };
}

async function eventually<T>(probe: () => T, accept: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met; last value ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('DNS proxy (whole agent against the local control plane)', function () {
  this.timeout(60_000);
  const schema = new ProtoSchema();
  const dirs = new TempDirs();
  const cleanups: (() => unknown)[] = [];
  let cp: LocalControlPlane;

  beforeEach(async () => {
    cp = new LocalControlPlane({ schema });
    await cp.start();
    await cp.loadYamlFile(SCENARIO_YAML);
  });

  afterEach(async function () {
    for (const task of cleanups.splice(0).reverse()) await task();
    await cp.close();
    dirs.cleanup();
  });

  async function startAgent(env: Record<string, string> = {}) {
    const cwd = dirs.make();
    const withEnvoy = env['DISABLE_ENVOY'] === 'false';
    const mesh = scenarioMesh(cp.address, withEnvoy ? await fakeEnvoyMeshOptions(cwd) : {});
    writeVmFiles(cwd, { mesh, rootCertPem: cp.rootCertPem, token: await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm' }) });
    const agent = AgentProcess.start({ cwd, env: { CA_ADDR: cp.address, INSTANCE_IP: '10.0.0.1', ...env } });
    cleanups.push(() => agent.stop());
    return { cwd, agent, port: await agent.dnsPort() };
  }

  it('resolves the scenario ServiceEntry host to the VIP the control plane allocated, and shows table updates at once', async () => {
    const { agent, port } = await startAgent({ DISABLE_ENVOY: 'true' });
    assert.match(await agent.waitForLog('Starting local udp DNS server on 127.0.0.1:'), /\tinfo\tdns\tStarting local udp DNS server on 127\.0\.0\.1:\d+$/);
    await agent.waitForLog('Starting local tcp DNS server on 127.0.0.1:');
    const nginx = await eventually(() => dig(port, 'nginx.example.com'), (r) => r.status === 'NOERROR' && r.answers.length > 0);
    assert.deepEqual(nginx.answers, ['240.240.0.2']);
    // The search-domain shortcut (resolv.conf: search vm.example.org) gives a CNAME to the real name.
    assert.deepEqual(dig(port, 'nginx.example.com.vm.example.org').answers, ['nginx.example.com.', '240.240.0.2']);

    cp.applyYaml(
      'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: db, namespace: istio-demo}\nspec:\n  hosts: [db.example.com]\n  ports: [{number: 5432, name: tcp, protocol: TCP}]\n  resolution: STATIC\n',
      'db.yaml',
    );
    const started = Date.now();
    const db = await eventually(() => dig(port, 'db.example.com'), (r) => r.answers.length > 0, 5_000);
    assert.deepEqual(db.answers, ['240.240.0.3']);
    assert.ok(Date.now() - started < 2_000, 'the new table is served as soon as it arrives');
  });

  it('answers SERVFAIL before the first table, and asks for the table only after Envoy\'s first LDS request', async () => {
    const { cwd, port } = await startAgent({ DISABLE_ENVOY: 'false' });
    assert.equal(dig(port, 'nginx.example.com').status, 'SERVFAIL');
    // Envoy connects and asks for listeners: only then does the agent request the NameTable.
    const client = new grpc.Client(`unix://${path.join(cwd, 'etc/istio/proxy/XDS')}`, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    const envoy = new TestStream<Buffer, Buffer>(client, rawMethod(SOTW_ADS_PATH));
    const node = { id: 'sidecar~10.0.0.1~vm.istio-demo~istio-demo.svc.cluster.local', cluster: 'nginx.istio-demo', metadata: toStruct({ NAMESPACE: 'istio-demo', DNS_CAPTURE: 'true', INSTANCE_IPS: '10.0.0.1' }) };
    envoy.send(schema.discoveryRequest.encode({ version_info: '', node, resource_names: [], type_url: LISTENER_TYPE_URL, response_nonce: '', error_detail: null }));
    const answer = await eventually(() => dig(port, 'nginx.example.com'), (r) => r.answers.length > 0);
    assert.deepEqual(answer.answers, ['240.240.0.2']);
    await cp.waitForNameTableAck();
  });

  it('keeps answering from the last table while istiod is away', async () => {
    const { agent, port } = await startAgent({ DISABLE_ENVOY: 'true' });
    await eventually(() => dig(port, 'nginx.example.com'), (r) => r.answers.length > 0);
    await cp.close();
    await agent.waitForLog('reconnecting to upstream XDS server in');
    assert.deepEqual(dig(port, 'nginx.example.com').answers, ['240.240.0.2']);
    assert.deepEqual(dig(port, 'nginx.example.com', { tcp: true }).answers, ['240.240.0.2']);
    await cp.start();
  });
});
