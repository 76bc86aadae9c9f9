import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { status, type ServiceError } from '@grpc/grpc-js';
import { parse as parseYaml } from 'yaml';
import { FakeClock } from '../../test/fakes/fake-clock.js';
import { HEALTH_INFO_TYPE_URL, NAME_TABLE_TYPE_URL, ProtoSchema, toStruct, type JsonLike, type Node } from '../proto/index.js';
import { LocalControlPlane, type LocalControlPlaneOptions } from './local-control-plane.js';
import { Cleanups, authMetadata, connect, deltaRequestFor, openDelta, openSotw, sotwRequestFor } from './test-support.js';
import {
  AUTO_REGISTRATION_GROUP_ANNOTATION,
  CONNECTED_AT_ANNOTATION,
  DISCONNECTED_AT_ANNOTATION,
  HEALTH_CHECKS_ENABLED_ANNOTATION,
  WORKLOAD_CONTROLLER_ANNOTATION,
  autoRegisteredEntryName,
  formatRfc3339Nano,
  isWorkloadEntryHealthy,
  type WorkloadEntry,
} from './workload-entry-registry.js';

const SCENARIO = fileURLToPath(new URL('../../test/fixtures/localmesh/scenario.yaml', import.meta.url));

/** Node metadata of the scenario VM, as the agent sends it (SCENARIO.md steps 4-7). */
const VM_METADATA: Record<string, JsonLike> = {
  AUTO_REGISTER_GROUP: 'nginx',
  NAMESPACE: 'istio-demo',
  INSTANCE_IPS: '10.0.0.1',
  LABELS: { app: 'nginx', class: 'vm' },
  PROXY_CONFIG: { readinessProbe: { httpGet: { port: 80 } } },
  NETWORK: '',
};

const ENTRY_NAME = 'nginx-10.0.0.1';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const RFC3339_NANO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;
const GROUP_YAML = 'apiVersion: networking.istio.io/v1\nkind: WorkloadGroup\nmetadata: {name: nginx, namespace: istio-demo}\nspec:\n  template: {serviceAccount: vm}\n';

function vmNode(metadata: Record<string, JsonLike> = {}, extra: Partial<Node> = {}): Node {
  return {
    id: 'sidecar~10.0.0.1~vm.istio-demo~istio-demo.svc.cluster.local',
    cluster: 'nginx.istio-demo',
    metadata: toStruct({ ...VM_METADATA, ...metadata }),
    ...extra,
  };
}

function healthyCondition(entry: WorkloadEntry | undefined) {
  return entry?.status?.conditions.find((condition) => condition.type === 'Healthy');
}

describe('LocalControlPlane WorkloadEntry auto-registration', function () {
  this.timeout(30_000);
  const schema = new ProtoSchema();
  const cleanups = new Cleanups();
  afterEach(() => cleanups.runAll());

  async function setup(options: LocalControlPlaneOptions = {}) {
    const cp = new LocalControlPlane({ schema, ...options });
    cleanups.add(() => cp.close());
    await cp.start();
    await cp.loadYamlFile(SCENARIO);
    const client = connect(cleanups, cp.port, cp.rootCertPem);
    const metadataFor = async (serviceAccount = 'vm', namespace = 'istio-demo') =>
      authMetadata({ token: await cp.issueToken({ namespace, serviceAccount }), clusterId: 'Kubernetes' });
    const vm = await metadataFor();
    /** A SotW stream whose first request carries `node`, as the agent's xDS proxy opens one. */
    const openVm = async (node: Node = vmNode(), metadata = vm) => {
      const opened = openSotw(cleanups, client, schema, metadata);
      opened.stream.write(sotwRequestFor(NAME_TABLE_TYPE_URL, { node }));
      return opened;
    };
    return { cp, client, vm, metadataFor, openVm };
  }

  it('creates nginx-<ip> from the WorkloadGroup on connect: labels, service account, address, owner, annotations', async () => {
    const { cp, openVm } = await setup();
    const { reader } = await openVm();
    await reader.next();
    const entry = await cp.waitForWorkloadEntry((e) => e.metadata.name === ENTRY_NAME);
    const group = cp.workloadGroup('istio-demo', 'nginx');
    assert.ok(group);

    assert.equal(entry.apiVersion, 'networking.istio.io/v1');
    assert.equal(entry.kind, 'WorkloadEntry');
    assert.equal(entry.metadata.namespace, 'istio-demo');
    assert.deepEqual(entry.metadata.labels, { app: 'nginx', class: 'vm' });
    assert.deepEqual(entry.spec, { address: '10.0.0.1', labels: { app: 'nginx', class: 'vm' }, serviceAccount: 'vm' });
    assert.equal(entry.metadata.ownerReferences.length, 1);
    const [owner] = entry.metadata.ownerReferences;
    assert.deepEqual({ ...owner, uid: '' }, { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadGroup', name: 'nginx', uid: '', controller: true });
    assert.match(owner?.uid ?? '', UUID);
    assert.match(entry.metadata.uid, UUID);
    assert.match(entry.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const { [CONNECTED_AT_ANNOTATION]: connectedAt, ...others } = entry.metadata.annotations;
    assert.deepEqual(others, {
      [AUTO_REGISTRATION_GROUP_ANNOTATION]: 'nginx',
      [WORKLOAD_CONTROLLER_ANNOTATION]: 'localmesh',
      [HEALTH_CHECKS_ENABLED_ANNOTATION]: 'true',
    });
    assert.match(connectedAt ?? '', RFC3339_NANO);
    assert.deepEqual(cp.workloadEntry('istio-demo', ENTRY_NAME), entry);
    assert.deepEqual(
      cp.workloadEntryEvents.map((event) => [event.kind, event.name]),
      [['registered', ENTRY_NAME]],
    );
    assert.ok(Object.isFrozen(entry.metadata.labels), 'entries are frozen snapshots');
  });

  it('counts a health-checked entry unhealthy until the first healthy report, then follows the reports', async () => {
    const { cp, openVm } = await setup();
    const { stream, reader } = await openVm();
    await reader.next();
    const created = await cp.waitForWorkloadEntry((e) => e.metadata.name === ENTRY_NAME);
    // As istiod: no condition is written at creation; the health-checks annotation alone makes it unhealthy.
    assert.equal(created.status, undefined);
    assert.equal(isWorkloadEntryHealthy(created), false);

    stream.write(sotwRequestFor(HEALTH_INFO_TYPE_URL, {}));
    const healthy = await cp.waitForWorkloadEntry((e) => healthyCondition(e)?.status === 'True');
    assert.equal(isWorkloadEntryHealthy(healthy), true);
    const condition = healthyCondition(healthy);
    assert.equal(condition?.message, undefined);
    assert.equal(condition?.lastProbeTime, condition?.lastTransitionTime);
    assert.ok(!Number.isNaN(Date.parse(condition?.lastProbeTime ?? '')));

    stream.write(sotwRequestFor(HEALTH_INFO_TYPE_URL, { error_detail: { code: 13, message: 'connection refused' } }));
    const unhealthy = await cp.waitForWorkloadEntry((e) => healthyCondition(e)?.status === 'False');
    assert.deepEqual(
      unhealthy.status?.conditions.map((c) => [c.type, c.status, c.message]),
      [['Healthy', 'False', 'connection refused']],
    );
    assert.equal(isWorkloadEntryHealthy(unhealthy), false);
    // Health reports subscribe to nothing: the only response on the stream is the NameTable.
    assert.equal(reader.pending, 0);
    assert.deepEqual(
      cp.workloadEntryEvents.map((event) => event.kind),
      ['registered', 'health', 'health'],
    );
  });

  it('takes health reports on a Delta stream too', async () => {
    const { cp, client, vm } = await setup();
    const { stream, reader } = openDelta(cleanups, client, schema, vm);
    stream.write(deltaRequestFor(NAME_TABLE_TYPE_URL, { node: vmNode() }));
    await reader.next();
    stream.write(deltaRequestFor(HEALTH_INFO_TYPE_URL, { error_detail: { code: 13, message: 'status code was not from [200,400), bad code 503' } }));
    const entry = await cp.waitForWorkloadEntry((e) => healthyCondition(e)?.status === 'False');
    assert.equal(healthyCondition(entry)?.message, 'status code was not from [200,400), bad code 503');
    stream.write(deltaRequestFor(HEALTH_INFO_TYPE_URL, {}));
    await cp.waitForWorkloadEntry((e) => healthyCondition(e)?.status === 'True');
  });

  it('ignores a health report sent before the first xDS request, as istiod does', async () => {
    const { cp, client, vm } = await setup();
    const { stream, reader } = openSotw(cleanups, client, schema, vm);
    stream.write(sotwRequestFor(HEALTH_INFO_TYPE_URL, {}));
    stream.write(sotwRequestFor(NAME_TABLE_TYPE_URL, { node: vmNode() }));
    await reader.next();
    const entry = await cp.waitForWorkloadEntry();
    assert.equal(entry.status, undefined);
    assert.equal(cp.requests.filter((r) => r.typeUrl === HEALTH_INFO_TYPE_URL).length, 1);
  });

  it('marks the entry disconnected when the proxy goes, and deletes it after the grace period', async () => {
    const { cp, openVm } = await setup({ workloadEntryGracePeriodMs: 300 });
    const { stream, reader } = await openVm();
    await reader.next();
    const created = await cp.waitForWorkloadEntry();
    stream.cancel();
    const disconnected = await cp.waitForWorkloadEntry((e) => DISCONNECTED_AT_ANNOTATION in e.metadata.annotations);
    assert.match(disconnected.metadata.annotations[DISCONNECTED_AT_ANNOTATION] ?? '', RFC3339_NANO);
    assert.equal(disconnected.metadata.annotations[CONNECTED_AT_ANNOTATION], undefined, 'istiod removes connectedAt');
    assert.equal(disconnected.metadata.uid, created.metadata.uid);
    const deleted = await cp.waitForWorkloadEntryEvent((event) => event.kind === 'deleted', 5000);
    assert.equal(deleted.name, ENTRY_NAME);
    assert.ok(deleted.at.getTime() - Date.parse(disconnected.metadata.annotations[DISCONNECTED_AT_ANNOTATION] ?? '') >= 300);
    assert.deepEqual(cp.workloadEntries, []);
    assert.equal(cp.workloadEntry('istio-demo', ENTRY_NAME), undefined);
  });

  it('keeps the entry of a proxy that reconnects within the grace period', async () => {
    const clock = new FakeClock(Date.now());
    const { cp, openVm } = await setup({ clock });
    const first = await openVm();
    await first.reader.next();
    const created = await cp.waitForWorkloadEntry();
    first.stream.cancel();
    await cp.waitForWorkloadEntryEvent((event) => event.kind === 'disconnected');
    await clock.advance(9_000);
    assert.ok(cp.workloadEntry('istio-demo', ENTRY_NAME), 'still within the default 10 s grace period');

    const reconnectedAt = clock.now();
    const second = await openVm();
    await second.reader.next();
    await cp.waitForWorkloadEntryEvent((event) => event.kind === 'reconnected');
    await clock.advance(60_000);
    const kept = cp.workloadEntry('istio-demo', ENTRY_NAME);
    assert.ok(kept);
    assert.equal(kept.metadata.uid, created.metadata.uid);
    assert.equal(kept.metadata.annotations[DISCONNECTED_AT_ANNOTATION], undefined);
    assert.equal(kept.metadata.annotations[CONNECTED_AT_ANNOTATION], formatRfc3339Nano(reconnectedAt));
    assert.deepEqual(
      cp.workloadEntryEvents.map((event) => event.kind),
      ['registered', 'disconnected', 'reconnected'],
    );

    // Gone for good: deleted once the grace period has passed, and not before.
    second.stream.cancel();
    await cp.waitForWorkloadEntry((e) => DISCONNECTED_AT_ANNOTATION in e.metadata.annotations);
    await clock.advance(9_999);
    assert.ok(cp.workloadEntry('istio-demo', ENTRY_NAME));
    await clock.advance(1);
    assert.equal(cp.workloadEntry('istio-demo', ENTRY_NAME), undefined);
  });

  it('disconnects a proxy only when the last of its streams ends', async () => {
    const { cp, openVm } = await setup({ workloadEntryGracePeriodMs: 300 });
    const first = await openVm();
    await first.reader.next();
    const second = await openVm();
    await second.reader.next();
    await cp.waitForWorkloadEntry();
    first.stream.cancel();
    await cp.waitForNode((node) => node.stream === 1 && node.disconnectedAt !== undefined);
    assert.equal(cp.workloadEntryEvents.some((event) => event.kind === 'disconnected'), false);
    assert.ok(cp.workloadEntry('istio-demo', ENTRY_NAME)?.metadata.annotations[CONNECTED_AT_ANNOTATION]);
    second.stream.cancel();
    await cp.waitForWorkloadEntryEvent((event) => event.kind === 'disconnected');
  });

  it('refuses a proxy whose verified identity is not the template service account, and creates nothing', async () => {
    const { cp, openVm, metadataFor } = await setup();
    const { reader } = await openVm(vmNode(), await metadataFor('intruder'));
    const ended = (await reader.ended) as ServiceError;
    // istiod returns a plain error here, which gRPC sends as UNKNOWN.
    assert.equal(ended.code, status.UNKNOWN);
    assert.equal(ended.details, 'registration of WorkloadEntry service account mismatch: "intruder" vs "vm"');
    assert.deepEqual(cp.workloadEntries, []);
    const [event] = cp.workloadEntryEvents;
    assert.deepEqual([event?.kind, event?.code, event?.name], ['rejected', status.UNKNOWN, ENTRY_NAME]);
  });

  it('refuses a proxy of another namespace, and lets it in when identity validation is off', async () => {
    const { cp, openVm, metadataFor } = await setup();
    const { reader } = await openVm(vmNode(), await metadataFor('vm', 'team'));
    const ended = (await reader.ended) as ServiceError;
    assert.equal(ended.details, 'registration of WorkloadEntry namespace mismatch: "team" vs "istio-demo"');
    assert.deepEqual(cp.workloadEntries, []);

    const lax = await setup({ validateWorkloadEntryIdentity: false });
    const accepted = await lax.openVm(vmNode(), await lax.metadataFor('intruder'));
    await accepted.reader.next();
    await lax.cp.waitForWorkloadEntry((e) => e.metadata.name === ENTRY_NAME);
  });

  it('refuses a proxy whose WorkloadGroup does not exist with FAILED_PRECONDITION, and registers it once the group is applied', async () => {
    const { cp, openVm } = await setup();
    cp.deleteYaml(GROUP_YAML);
    const refused = await openVm();
    const ended = (await refused.reader.ended) as ServiceError;
    assert.equal(ended.code, status.FAILED_PRECONDITION);
    assert.equal(ended.details, 'auto-registration WorkloadEntry of vm.istio-demo failed: cannot find WorkloadGroup istio-demo/nginx');
    assert.deepEqual(cp.workloadEntries, []);

    // The agent retries; once the group exists the next connection registers.
    cp.applyYaml(GROUP_YAML);
    const retried = await openVm();
    await retried.reader.next();
    const entry = await cp.waitForWorkloadEntry();
    assert.equal(entry.metadata.ownerReferences[0]?.name, 'nginx');
  });

  it('deletes the entries of a deleted WorkloadGroup, and re-registers connected proxies when it comes back', async () => {
    const { cp, openVm } = await setup();
    const { reader } = await openVm();
    await reader.next();
    const before = await cp.waitForWorkloadEntry();
    cp.deleteYaml(GROUP_YAML);
    await cp.waitForWorkloadEntryEvent((event) => event.kind === 'deleted');
    assert.deepEqual(cp.workloadEntries, []);

    cp.applyYaml(GROUP_YAML);
    const after = await cp.waitForWorkloadEntry();
    assert.notEqual(after.metadata.ownerReferences[0]?.uid, before.metadata.ownerReferences[0]?.uid, 'a re-created group has a new uid');
    assert.notEqual(after.metadata.uid, before.metadata.uid);
    // The group is now the one just applied: its template has no labels, the node's still apply.
    assert.deepEqual(after.metadata.labels, { app: 'nginx', class: 'vm' });
    assert.deepEqual(
      cp.workloadEntryEvents.map((event) => event.kind),
      ['registered', 'deleted', 'registered'],
    );
  });

  it('names an IPv6 proxy with dashes for colons, adds the network, and takes locality from the node', async () => {
    const { cp, openVm } = await setup();
    const node = vmNode(
      { INSTANCE_IPS: '2001:db8::1,10.0.0.1', NETWORK: 'vm-net', LABELS: { app: 'nginx', 'istio-locality': 'eu-west1.zone-a' } },
      { locality: { region: 'eu-west1', zone: 'zone-a', sub_zone: '' } },
    );
    const { reader } = await openVm(node);
    await reader.next();
    const entry = await cp.waitForWorkloadEntry();
    assert.equal(entry.metadata.name, 'nginx-2001-db8--1-vm-net');
    assert.deepEqual(entry.spec, {
      address: '2001:db8::1',
      labels: { app: 'nginx' },
      network: 'vm-net',
      locality: 'eu-west1/zone-a',
      serviceAccount: 'vm',
    });
  });

  it('skips registration of a proxy without an IP, and serves it all the same', async () => {
    const { cp, openVm } = await setup();
    const node = { ...vmNode({ INSTANCE_IPS: 'not-an-ip' }), id: 'sidecar~~vm.istio-demo~istio-demo.svc.cluster.local' };
    const { reader } = await openVm(node);
    const response = await reader.next();
    assert.equal(response.type_url, NAME_TABLE_TYPE_URL);
    assert.deepEqual(cp.workloadEntries, []);
    assert.deepEqual(
      cp.workloadEntryEvents.map((event) => [event.kind, event.details]),
      [['skipped', 'missing IP addresses']],
    );
  });

  it('registers nothing without AUTO_REGISTER_GROUP, or with auto-registration turned off', async () => {
    const { cp, openVm } = await setup();
    const { reader } = await openVm(vmNode({ AUTO_REGISTER_GROUP: '' }));
    await reader.next();
    const off = await setup({ workloadEntryAutoRegistration: false });
    const other = await off.openVm();
    await other.reader.next();
    for (const plane of [cp, off.cp]) {
      assert.deepEqual(plane.workloadEntries, []);
      assert.deepEqual(plane.workloadEntryEvents, []);
    }
  });

  it('keeps entries across a restart, and deletes those still disconnected once started again', async () => {
    const clock = new FakeClock(Date.now());
    const { cp, openVm } = await setup({ clock });
    const { reader } = await openVm();
    await reader.next();
    await cp.waitForWorkloadEntry();
    await cp.close();
    assert.ok(cp.workloadEntry('istio-demo', ENTRY_NAME)?.metadata.annotations[DISCONNECTED_AT_ANNOTATION]);
    assert.equal(clock.pending, 0, 'a closed control plane holds no timer');
    await clock.advance(5_000);
    await cp.start();
    await clock.advance(4_999);
    assert.ok(cp.workloadEntry('istio-demo', ENTRY_NAME));
    await clock.advance(1);
    assert.equal(cp.workloadEntry('istio-demo', ENTRY_NAME), undefined);
  });

  it('serves the entries read-only over HTTP as JSON and YAML, with Kubernetes 404s', async () => {
    const { cp, openVm } = await setup({ httpPort: 0 });
    assert.match(cp.httpAddress, /^http:\/\/127\.0\.0\.1:\d+$/);
    const { reader } = await openVm();
    await reader.next();
    const entry = await cp.waitForWorkloadEntry();
    const base = `${cp.httpAddress}/apis/networking.istio.io/v1`;

    const list = await fetch(`${base}/namespaces/istio-demo/workloadentries`);
    assert.equal(list.status, 200);
    assert.match(list.headers.get('content-type') ?? '', /^application\/json/);
    const listBody = (await list.json()) as { kind: string; apiVersion: string; items: unknown[] };
    assert.equal(listBody.kind, 'WorkloadEntryList');
    assert.equal(listBody.apiVersion, 'networking.istio.io/v1');
    assert.deepEqual(listBody.items, [entry]);
    assert.deepEqual(((await (await fetch(`${base}/namespaces/team/workloadentries`)).json()) as { items: unknown[] }).items, []);
    assert.deepEqual(((await (await fetch(`${base}/workloadentries`)).json()) as { items: unknown[] }).items, [entry]);

    const one = await fetch(`${base}/namespaces/istio-demo/workloadentries/${ENTRY_NAME}`);
    assert.deepEqual(await one.json(), entry);

    const yamlByQuery = await fetch(`${base}/namespaces/istio-demo/workloadentries/${ENTRY_NAME}?format=yaml`);
    assert.match(yamlByQuery.headers.get('content-type') ?? '', /^application\/yaml/);
    const yamlText = await yamlByQuery.text();
    assert.match(yamlText, /^apiVersion: networking\.istio\.io\/v1\nkind: WorkloadEntry\n/);
    assert.deepEqual(parseYaml(yamlText), entry);
    const yamlByAccept = await fetch(`${base}/namespaces/istio-demo/workloadentries`, { headers: { Accept: 'application/yaml' } });
    assert.deepEqual((parseYaml(await yamlByAccept.text()) as { items: unknown[] }).items, [entry]);

    const missing = await fetch(`${base}/namespaces/istio-demo/workloadentries/nope`);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'workloadentries.networking.istio.io "nope" not found',
      reason: 'NotFound',
      details: { name: 'nope', group: 'networking.istio.io', kind: 'workloadentries' },
      code: 404,
    });
    assert.equal((await fetch(`${cp.httpAddress}/api/v1/pods`)).status, 404);
    assert.equal((await fetch(`${base}/namespaces/istio-demo/workloadentries`, { method: 'DELETE' })).status, 405);

    await cp.close();
    await assert.rejects(fetch(`${base}/workloadentries`));
  });
});

describe('autoRegisteredEntryName', () => {
  it('keeps the last 253 characters of a long name', () => {
    const name = autoRegisteredEntryName({ group: 'g'.repeat(300), ips: ['10.0.0.1'], namespace: 'ns', network: 'net' });
    assert.equal(name.length, 253);
    assert.ok(name.endsWith('g-10.0.0.1-net'));
  });

  it('is empty without a group, an IP or a namespace', () => {
    assert.equal(autoRegisteredEntryName({ group: 'g', ips: [], namespace: 'ns', network: '' }), '');
    assert.equal(autoRegisteredEntryName({ group: 'g', ips: ['10.0.0.1'], namespace: '', network: '' }), '');
    assert.equal(autoRegisteredEntryName({ group: '', ips: ['10.0.0.1'], namespace: 'ns', network: '' }), '');
  });
});

describe('formatRfc3339Nano', () => {
  it('writes fraction digits as Go does, without trailing zeros', () => {
    assert.equal(formatRfc3339Nano(Date.parse('2026-11-21T10:00:00.120Z')), '2026-11-21T10:00:00.12Z');
    assert.equal(formatRfc3339Nano(Date.parse('2026-11-21T10:00:00.000Z')), '2026-11-21T10:00:00Z');
  });
});
