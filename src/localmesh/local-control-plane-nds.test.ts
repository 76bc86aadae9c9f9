import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { ConfigErrors } from '../config/index.js';
import { NAME_TABLE_TYPE_URL, ProtoSchema, toStruct, type DeltaDiscoveryRequest, type DiscoveryRequest, type NameInfo, type Node } from '../proto/index.js';
import { Cleanups, deltaRequestFor, openDelta, openSotw, sotwRequestFor, startWithClient } from './test-support.js';

const SCENARIO = fileURLToPath(new URL('../../test/fixtures/localmesh/scenario.yaml', import.meta.url));

const VM_NODE: Node = {
  id: 'sidecar~10.0.0.1~vm.istio-demo~istio-demo.svc.cluster.local',
  cluster: 'nginx.istio-demo',
  metadata: toStruct({ NAMESPACE: 'istio-demo', DNS_CAPTURE: 'true', INSTANCE_IPS: '10.0.0.1' }),
};

const OTHER_NODE: Node = {
  id: 'sidecar~10.0.0.2~app.team~team.svc.cluster.local',
  cluster: 'app.team',
  metadata: toStruct({ NAMESPACE: 'team', INSTANCE_IPS: '10.0.0.2' }),
};

function external(...ips: string[]): NameInfo {
  return { ips, registry: 'External', shortname: '', namespace: '', alt_hosts: [] };
}

/** The scenario YAML's table for a DNS-capturing VM: httpbin takes the first VIP, nginx the second. */
const SCENARIO_TABLE = { 'httpbin.example.com': external('240.240.0.1'), 'nginx.example.com': external('240.240.0.2') };

function serviceEntry(name: string, spec: string, namespace = 'istio-demo'): string {
  return `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec:\n${spec}\n`;
}

const STATIC_HTTP = '  resolution: STATIC\n  ports: [{number: 80, name: http, protocol: HTTP}]';

const sotwRequest = (fields: Partial<DiscoveryRequest>) => sotwRequestFor(NAME_TABLE_TYPE_URL, fields);
const deltaRequest = (fields: Partial<DeltaDiscoveryRequest>) => deltaRequestFor(NAME_TABLE_TYPE_URL, fields);

describe('LocalControlPlane NameTables', function () {
  this.timeout(30_000);
  const schema = new ProtoSchema();
  const cleanups = new Cleanups();
  afterEach(() => cleanups.runAll());

  it('serves a SotW client the scenario NameTable for its node, and pushes a new one when YAML is applied', async () => {
    const { cp, client, metadata } = await startWithClient(cleanups, schema);
    await cp.loadYamlFile(SCENARIO);
    assert.deepEqual(cp.allocatedAddresses('nginx.example.com'), ['240.240.0.2', '2001:2::2']);
    const { stream, reader } = openSotw(cleanups, client, schema, metadata);
    stream.write(sotwRequest({ node: VM_NODE }));
    const first = await reader.next();
    assert.equal(first.type_url, NAME_TABLE_TYPE_URL);
    assert.equal(first.resources.length, 1);
    assert.equal(first.resources[0]?.type_url, NAME_TABLE_TYPE_URL);
    assert.deepEqual(schema.nameTable.decode(first.resources[0]?.value ?? Buffer.alloc(0)).table, SCENARIO_TABLE);

    stream.write(sotwRequest({ version_info: first.version_info, response_nonce: first.nonce }));
    const ack = await cp.waitForNameTableAck((node) => node.id === VM_NODE.id);
    assert.equal(ack.request.nonce, first.nonce);
    assert.deepEqual(ack.table?.table, SCENARIO_TABLE);

    const change = cp.applyYaml(serviceEntry('db', `  hosts: [db.example.com]\n${STATIC_HTTP}`), 'db.yaml');
    assert.equal(change.serviceEntries, true);
    const second = await reader.next();
    assert.equal(Number(second.version_info), Number(first.version_info) + 1);
    const table = schema.nameTable.decode(second.resources[0]?.value ?? Buffer.alloc(0)).table;
    assert.deepEqual(table, { ...SCENARIO_TABLE, 'db.example.com': external('240.240.0.3') });
    const [node] = cp.connectedNodes;
    assert.ok(node);
    assert.deepEqual(cp.nameTableFor(node).table, table);
    stream.write(sotwRequest({ version_info: second.version_info, response_nonce: second.nonce }));
    assert.deepEqual((await cp.waitForNameTableAck()).table?.table, table);
  });

  it('serves a Delta client one unnamed NameTable and only pushes tables that changed for it', async () => {
    const { cp, client, metadata } = await startWithClient(cleanups, schema);
    await cp.loadYamlFile(SCENARIO);
    const { stream, reader } = openDelta(cleanups, client, schema, metadata);
    stream.write(deltaRequest({ node: VM_NODE }));
    const first = await reader.next();
    assert.equal(first.type_url, NAME_TABLE_TYPE_URL);
    assert.deepEqual(
      first.resources.map((r) => r.name),
      [''],
    );
    const value = first.resources[0]?.resource?.value ?? Buffer.alloc(0);
    assert.deepEqual(schema.nameTable.decode(value).table, SCENARIO_TABLE);
    stream.write(deltaRequest({ response_nonce: first.nonce }));
    await cp.waitForNameTableAck();

    // Neither a WorkloadGroup nor an entry this node cannot see changes its table: nothing is sent.
    cp.applyYaml(
      'apiVersion: networking.istio.io/v1\nkind: WorkloadGroup\nmetadata: {name: other, namespace: istio-demo}\nspec:\n  template: {serviceAccount: vm}\n',
    );
    cp.applyYaml(serviceEntry('hidden', `  hosts: [hidden.example.com]\n  exportTo: ["."]\n${STATIC_HTTP}`, 'team'));
    cp.applyYaml(serviceEntry('db', `  hosts: [db.example.com]\n${STATIC_HTTP}`));
    const second = await reader.next();
    assert.deepEqual(
      second.resources.map((r) => r.name),
      [''],
    );
    assert.deepEqual(schema.nameTable.decode(second.resources[0]?.resource?.value ?? Buffer.alloc(0)).table, {
      ...SCENARIO_TABLE,
      'db.example.com': external('240.240.0.4'),
    });
    assert.equal(reader.pending, 0);
  });

  it('builds each node its own table: namespace, DNS capture and IP family', async () => {
    const { cp, client, metadata } = await startWithClient(cleanups, schema);
    cp.applyYaml(
      serviceEntry('nginx', `  hosts: [nginx.example.com]\n${STATIC_HTTP}`) +
        '---\n' +
        serviceEntry('own', `  hosts: [own.team.example.com]\n  addresses: [10.1.2.3]\n  exportTo: ["."]\n${STATIC_HTTP}`, 'team'),
    );
    const vm = openSotw(cleanups, client, schema, metadata);
    vm.stream.write(sotwRequest({ node: VM_NODE }));
    const other = openSotw(cleanups, client, schema, metadata);
    other.stream.write(sotwRequest({ node: OTHER_NODE }));
    const tableOf = async (reader: typeof vm.reader) => schema.nameTable.decode((await reader.next()).resources[0]?.value ?? Buffer.alloc(0)).table;
    assert.deepEqual(await tableOf(vm.reader), { 'nginx.example.com': external('240.240.0.1') });
    assert.deepEqual(await tableOf(other.reader), { 'own.team.example.com': external('10.1.2.3') });

    const v6 = openSotw(cleanups, client, schema, metadata);
    v6.stream.write(sotwRequest({ node: { ...VM_NODE, metadata: toStruct({ NAMESPACE: 'istio-demo', DNS_CAPTURE: 'true', INSTANCE_IPS: 'fd00::5' }) } }));
    assert.deepEqual(await tableOf(v6.reader), { 'nginx.example.com': external('2001:2::1') });
  });

  it('pushes nothing and keeps its config when applied YAML has an error', async () => {
    const { cp, client, metadata } = await startWithClient(cleanups, schema);
    await cp.loadYamlFile(SCENARIO);
    const { stream, reader } = openSotw(cleanups, client, schema, metadata);
    stream.write(sotwRequest({ node: VM_NODE }));
    await reader.next();
    const responses = cp.responses.length;
    assert.throws(
      () => cp.applyYaml(serviceEntry('bad', '  hosts: []'), 'bad.yaml'),
      (err: unknown) =>
        err instanceof ConfigErrors && err.message === 'bad.yaml:5: document 1 (ServiceEntry istio-demo/bad): spec.hosts: must be a non-empty list',
    );
    await assert.rejects(cp.loadYamlFile('/nonexistent/mesh.yaml'), /\/nonexistent\/mesh\.yaml: cannot read: /);
    assert.equal(cp.responses.length, responses);
    assert.deepEqual(
      cp.serviceEntries.map((e) => e.metadata.name),
      ['httpbin-external', 'nginx'],
    );
  });

  it('lets the last of setResources and applyYaml decide what the NameTable type serves', async () => {
    const { cp, client, metadata } = await startWithClient(cleanups, schema);
    cp.applyYaml(serviceEntry('nginx', `  hosts: [nginx.example.com]\n${STATIC_HTTP}`));
    cp.setResources(NAME_TABLE_TYPE_URL, [{ name: '', value: schema.nameTable.encode({ table: { 'fixed.example.com': external('10.9.9.9') } }) }]);
    const { stream, reader } = openSotw(cleanups, client, schema, metadata);
    stream.write(sotwRequest({ node: VM_NODE }));
    const fixed = await reader.next();
    assert.deepEqual(Object.keys(schema.nameTable.decode(fixed.resources[0]?.value ?? Buffer.alloc(0)).table), ['fixed.example.com']);
    cp.applyYaml(serviceEntry('db', `  hosts: [db.example.com]\n${STATIC_HTTP}`));
    const generated = await reader.next();
    assert.deepEqual(Object.keys(schema.nameTable.decode(generated.resources[0]?.value ?? Buffer.alloc(0)).table).sort(), [
      'db.example.com',
      'nginx.example.com',
    ]);
  });

  it('declares Kubernetes services into the NameTables of connected proxies', async () => {
    const { cp, client, metadata } = await startWithClient(cleanups, schema);
    cp.serveNameTables();
    const { stream, reader } = openSotw(cleanups, client, schema, metadata);
    stream.write(sotwRequest({ node: VM_NODE }));
    assert.deepEqual(schema.nameTable.decode((await reader.next()).resources[0]?.value ?? Buffer.alloc(0)).table, {});
    cp.setKubernetesServices([{ host: 'istiod.istio-system.svc.cluster.local', namespace: 'istio-system', vips: ['10.96.0.20'] }]);
    const table = schema.nameTable.decode((await reader.next()).resources[0]?.value ?? Buffer.alloc(0)).table;
    assert.deepEqual(table, {
      'istiod.istio-system.svc.cluster.local': { ips: ['10.96.0.20'], registry: 'Kubernetes', shortname: 'istiod', namespace: 'istio-system', alt_hosts: [] },
    });
  });
});
