import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import type { NameInfo } from '../proto/index.js';
import { MeshConfigStore } from './mesh-config-store.js';
import { buildNameTable, nameTableProxyFromNode, type NameTableProxy } from './name-table.js';

const SCENARIO = new URL('../../test/fixtures/localmesh/scenario.yaml', import.meta.url);

const CAPTURING_VM: NameTableProxy = { namespace: 'istio-demo', dnsCapture: true, ipFamilies: ['v4'] };

function external(...ips: string[]): NameInfo {
  return { ips, registry: 'External', shortname: '', namespace: '', alt_hosts: [] };
}

function kubernetes(shortname: string, namespace: string, ...ips: string[]): NameInfo {
  return { ips, registry: 'Kubernetes', shortname, namespace, alt_hosts: [] };
}

function entry(name: string, spec: string, namespace = 'istio-demo'): string {
  return `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec:\n${spec}\n---\n`;
}

const HTTP = '  ports: [{number: 80, name: http, protocol: HTTP}]\n';

describe('buildNameTable', () => {
  it('resolves the scenario host to its auto-allocated address for a DNS-capturing VM in istio-demo', async () => {
    const store = new MeshConfigStore();
    store.applyYaml(await readFile(SCENARIO, 'utf8'), { fileName: 'scenario.yaml' });
    // httpbin.example.com comes first in the file and takes .1, so nginx gets the scenario's 240.240.0.2.
    assert.deepEqual(buildNameTable(store, CAPTURING_VM).table, {
      'httpbin.example.com': external('240.240.0.1'),
      'nginx.example.com': external('240.240.0.2'),
    });
  });

  it('leaves auto-allocated addresses out for a proxy without DNS capture, but keeps spec addresses', () => {
    const store = new MeshConfigStore();
    store.applyYaml(entry('auto', `  hosts: [auto.example.com]\n  resolution: STATIC\n${HTTP}`) + entry('own', `  hosts: [own.example.com]\n  addresses: [10.0.0.7]\n${HTTP}`));
    assert.deepEqual(buildNameTable(store, { ...CAPTURING_VM, dnsCapture: false }).table, { 'own.example.com': external('10.0.0.7') });
    assert.deepEqual(buildNameTable(store, { ...CAPTURING_VM, dnsCapture: false, dnsAutoAllocate: true }).table, {
      'own.example.com': external('10.0.0.7'),
    });
    assert.deepEqual(buildNameTable(store, CAPTURING_VM).table, {
      'auto.example.com': external('240.240.0.1'),
      'own.example.com': external('10.0.0.7'),
    });
  });

  it("filters auto-allocated addresses to the proxy's IP family, the first one's for dual stack", () => {
    const store = new MeshConfigStore();
    store.applyYaml(entry('a', `  hosts: [a.example.com]\n  resolution: STATIC\n${HTTP}`));
    assert.deepEqual(buildNameTable(store, { ...CAPTURING_VM, ipFamilies: ['v6'] }).table, { 'a.example.com': external('2001:2::1') });
    assert.deepEqual(buildNameTable(store, { ...CAPTURING_VM, ipFamilies: ['v4', 'v6'] }).table, { 'a.example.com': external('240.240.0.1') });
    assert.deepEqual(buildNameTable(store, { ...CAPTURING_VM, ipFamilies: [] }).table, { 'a.example.com': external('240.240.0.1') });
  });

  it('keeps ServiceEntry spec addresses of every family, merges them, and turns /32 into an address', () => {
    const store = new MeshConfigStore();
    store.applyYaml(
      entry('multi', `  hosts: [multi.example.com]\n  addresses: [10.0.0.1, 2001:db8::1, 10.0.0.2/32, 10.1.0.0/16]\n  resolution: STATIC\n${HTTP}`) +
        entry('more', `  hosts: [multi.example.com]\n  addresses: [10.0.0.3]\n  resolution: STATIC\n${HTTP}`),
    );
    assert.deepEqual(buildNameTable(store, CAPTURING_VM).table, {
      'multi.example.com': external('10.0.0.1', '2001:db8::1', '10.0.0.2', '10.0.0.3'),
    });
  });

  it('lists wildcard hosts that have addresses as written, and leaves out ones without', () => {
    const store = new MeshConfigStore();
    store.applyYaml(
      entry('wild', `  hosts: ["*.wild.example.com"]\n  addresses: [10.0.0.9]\n  resolution: STATIC\n${HTTP}`) +
        entry('bare', `  hosts: ["*.bare.example.com"]\n  resolution: STATIC\n${HTTP}`) +
        entry('dyn', '  hosts: ["*.dyn.example.com"]\n  resolution: DYNAMIC_DNS\n  ports: [{number: 443, name: tls, protocol: TLS}]') +
        entry('none', `  hosts: [none.example.com]\n  resolution: NONE\n${HTTP}`),
    );
    assert.deepEqual(buildNameTable(store, CAPTURING_VM).table, {
      '*.wild.example.com': external('10.0.0.9'),
      '*.dyn.example.com': external('240.240.0.1'),
    });
  });

  it('respects exportTo: "." for the own namespace, "~" for none, names, and "*" for all', () => {
    const store = new MeshConfigStore();
    const spec = (host: string, exportTo: string): string => `  hosts: [${host}]\n  addresses: [10.0.0.1]\n  exportTo: ${exportTo}\n${HTTP}`;
    store.applyYaml(
      entry('private', spec('private.example.com', '["."]'), 'team') +
        entry('hidden', spec('hidden.example.com', '["~"]'), 'team') +
        entry('shared', spec('shared.example.com', '[istio-demo]'), 'team') +
        entry('public', spec('public.example.com', '["*"]'), 'team'),
    );
    const hosts = (namespace: string): string[] => Object.keys(buildNameTable(store, { ...CAPTURING_VM, namespace }).table).sort();
    assert.deepEqual(hosts('team'), ['private.example.com', 'public.example.com']);
    assert.deepEqual(hosts('istio-demo'), ['public.example.com', 'shared.example.com']);
    assert.deepEqual(hosts('elsewhere'), ['public.example.com']);
  });

  it("takes a host defined in several namespaces from the proxy's namespace, else from the oldest entry", () => {
    const store = new MeshConfigStore();
    const spec = (address: string): string => `  hosts: [db.example.com]\n  addresses: [${address}]\n${HTTP}`;
    store.applyYaml(entry('db', spec('10.0.0.1'), 'first') + entry('db', spec('10.0.0.2'), 'second'));
    const ips = (namespace: string): string[] | undefined => buildNameTable(store, { ...CAPTURING_VM, namespace }).table['db.example.com']?.ips;
    assert.deepEqual(ips('second'), ['10.0.0.2']);
    assert.deepEqual(ips('first'), ['10.0.0.1']);
    assert.deepEqual(ips('istio-demo'), ['10.0.0.1']);
  });

  it('gives Kubernetes services registry, shortname and namespace, and precedence over a ServiceEntry', () => {
    const store = new MeshConfigStore();
    store.applyYaml(entry('decorator', `  hosts: [reviews.bookinfo.svc.cluster.local]\n  addresses: [10.0.0.99]\n${HTTP}`, 'bookinfo'));
    store.setKubernetesServices([
      { host: 'reviews.bookinfo.svc.cluster.local', namespace: 'bookinfo', vips: ['10.96.0.10', 'fd00::10'] },
      { host: 'ratings.bookinfo.svc.cluster.local', namespace: 'bookinfo', vips: ['fd00::11'] },
      { host: 'headless.bookinfo.svc.cluster.local', namespace: 'bookinfo', vips: [] },
      { host: 'private.bookinfo.svc.cluster.local', namespace: 'bookinfo', vips: ['10.96.0.12'], exportTo: ['.'] },
      { host: 'mcs.bookinfo.svc.clusterset.local', namespace: 'bookinfo', vips: ['10.96.0.13'], name: 'mcs' },
    ]);
    assert.deepEqual(buildNameTable(store, CAPTURING_VM).table, {
      'reviews.bookinfo.svc.cluster.local': kubernetes('reviews', 'bookinfo', '10.96.0.10'),
      'mcs.bookinfo.svc.clusterset.local': { ...kubernetes('', '', '10.96.0.13') },
    });
    assert.deepEqual(buildNameTable(store, { ...CAPTURING_VM, ipFamilies: ['v6'] }).table['ratings.bookinfo.svc.cluster.local'], kubernetes('ratings', 'bookinfo', 'fd00::11'));
    assert.deepEqual(buildNameTable(store, { ...CAPTURING_VM, namespace: 'bookinfo' }).table['private.bookinfo.svc.cluster.local'], kubernetes('private', 'bookinfo', '10.96.0.12'));
  });
});

describe('nameTableProxyFromNode', () => {
  it('reads namespace, DNS capture and IP families from node metadata', () => {
    assert.deepEqual(
      nameTableProxyFromNode({
        id: 'sidecar~10.0.0.1~vm.istio-demo~istio-demo.svc.cluster.local',
        metadata: { NAMESPACE: 'istio-demo', DNS_CAPTURE: 'true', INSTANCE_IPS: '10.0.0.1,fd00::1' },
      }),
      { namespace: 'istio-demo', dnsCapture: true, dnsAutoAllocate: false, ipFamilies: ['v4', 'v6'] },
    );
  });

  it("falls back to the node ID's domain and IP, and reads booleans as Go does", () => {
    assert.deepEqual(
      nameTableProxyFromNode({ id: 'sidecar~fd00::2~vm.team~team.svc.cluster.local', metadata: { DNS_CAPTURE: 'T', DNS_AUTO_ALLOCATE: 'yes' } }),
      { namespace: 'team', dnsCapture: true, dnsAutoAllocate: false, ipFamilies: ['v6'] },
    );
    assert.deepEqual(nameTableProxyFromNode({ id: 'x', metadata: { INSTANCE_IPS: 'not-an-ip' } }).ipFamilies, []);
  });
});
