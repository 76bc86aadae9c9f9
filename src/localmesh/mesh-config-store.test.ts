import assert from 'node:assert/strict';
import { ConfigErrors } from '../config/index.js';
import { MeshConfigStore, type MeshConfigChange } from './mesh-config-store.js';
import { PrefixAllocator, formatIp, parseIp } from './prefix-allocator.js';

interface EntryOptions {
  namespace?: string;
  hosts?: string[];
  addresses?: string[];
  resolution?: string;
  labels?: Record<string, string>;
  ports?: string;
}

/** A ServiceEntry document, as an operator writes one. */
function entry(name: string, options: EntryOptions = {}): string {
  const lines = [
    'apiVersion: networking.istio.io/v1',
    'kind: ServiceEntry',
    'metadata:',
    `  name: ${name}`,
    `  namespace: ${options.namespace ?? 'istio-demo'}`,
    ...(options.labels ? [`  labels: ${JSON.stringify(options.labels)}`] : []),
    'spec:',
    `  hosts: ${JSON.stringify(options.hosts ?? [`${name}.example.com`])}`,
    ...(options.addresses ? [`  addresses: ${JSON.stringify(options.addresses)}`] : []),
    `  resolution: ${options.resolution ?? 'STATIC'}`,
    `  ports: ${options.ports ?? '[{number: 80, name: http, protocol: HTTP}]'}`,
  ];
  return `${lines.join('\n')}\n`;
}

function statusOf(store: MeshConfigStore, name: string, namespace = 'istio-demo'): string[] {
  return (store.serviceEntry(namespace, name)?.status.addresses ?? []).map((a) => `${a.host}=${a.value}`);
}

describe('MeshConfigStore address allocation', () => {
  it('gives the first ServiceEntry host 240.240.0.1 and 2001:2::1, as istiod allocates from the address after the prefix', () => {
    const store = new MeshConfigStore();
    store.applyYaml(entry('nginx'));
    assert.deepEqual(store.allocatedAddresses('nginx.example.com'), ['240.240.0.1', '2001:2::1']);
    assert.deepEqual(statusOf(store, 'nginx'), ['nginx.example.com=240.240.0.1', 'nginx.example.com=2001:2::1']);
  });

  it('allocates sequentially in apply order, one pair per host', () => {
    const store = new MeshConfigStore();
    store.applyYaml([entry('a', { hosts: ['a1.example.com', 'a2.example.com'] }), entry('b')].join('---\n'));
    assert.deepEqual(statusOf(store, 'a'), [
      'a1.example.com=240.240.0.1',
      'a1.example.com=2001:2::1',
      'a2.example.com=240.240.0.2',
      'a2.example.com=2001:2::2',
    ]);
    assert.deepEqual(store.allocatedAddresses('b.example.com'), ['240.240.0.3', '2001:2::3']);
  });

  it('keeps an entry its addresses when it is applied again, changed or not', () => {
    const changes: MeshConfigChange[] = [];
    const store = new MeshConfigStore({ onChange: (change) => changes.push(change) });
    store.applyYaml(entry('a') + '---\n' + entry('b'));
    assert.equal(changes.length, 1);
    const unchanged = store.applyYaml(entry('a'));
    assert.equal(unchanged.serviceEntries, false, 'an unchanged entry is not a change');
    assert.equal(changes.length, 1);
    store.applyYaml(entry('a', { hosts: ['a.example.com', 'a-new.example.com'] }));
    assert.deepEqual(statusOf(store, 'a'), [
      'a.example.com=240.240.0.1',
      'a.example.com=2001:2::1',
      'a-new.example.com=240.240.0.3',
      'a-new.example.com=2001:2::3',
    ]);
    assert.deepEqual(store.allocatedAddresses('b.example.com'), ['240.240.0.2', '2001:2::2']);
    assert.deepEqual(
      store.serviceEntries.map((e) => e.metadata.name),
      ['a', 'b'],
      'an update keeps the creation order',
    );
  });

  it('allocates nothing for resolution NONE, spec addresses, the opt-out label, or wildcard hosts', () => {
    const store = new MeshConfigStore();
    store.applyYaml(
      [
        entry('none', { resolution: 'NONE' }),
        entry('own', { addresses: ['10.9.0.1'] }),
        entry('optout', { labels: { 'networking.istio.io/enable-autoallocate-ip': 'False' } }),
        entry('wild', { hosts: ['*.wild.example.com', 'exact.example.com'], resolution: 'STATIC' }),
        entry('dns', { resolution: 'DNS' }),
      ].join('---\n'),
    );
    assert.deepEqual(statusOf(store, 'none'), []);
    assert.deepEqual(statusOf(store, 'own'), []);
    assert.deepEqual(statusOf(store, 'optout'), []);
    assert.deepEqual(statusOf(store, 'wild'), ['exact.example.com=240.240.0.1', 'exact.example.com=2001:2::1']);
    assert.deepEqual(store.allocatedAddresses('dns.example.com'), ['240.240.0.2', '2001:2::2']);
  });

  it('gives wildcard hosts addresses with resolution DYNAMIC_DNS', () => {
    const store = new MeshConfigStore();
    store.applyYaml(entry('dyn', { hosts: ['*.example.org'], resolution: 'DYNAMIC_DNS', ports: '[{number: 443, name: tls, protocol: TLS}]' }));
    assert.deepEqual(store.allocatedAddresses('*.example.org'), ['240.240.0.1', '2001:2::1']);
  });

  it('does not reuse the addresses of a deleted entry, as istiod does not', () => {
    const store = new MeshConfigStore();
    store.applyYaml(entry('a'));
    assert.equal(store.delete('ServiceEntry', 'istio-demo', 'a').serviceEntries, true);
    store.applyYaml(entry('a'));
    assert.deepEqual(store.allocatedAddresses('a.example.com'), ['240.240.0.2', '2001:2::2']);
  });

  it('frees the addresses of an entry that gets its own, for the next entry to take', () => {
    const store = new MeshConfigStore();
    store.applyYaml(entry('a') + '---\n' + entry('b'));
    store.applyYaml(entry('a', { addresses: ['10.0.0.10'] }));
    assert.deepEqual(statusOf(store, 'a'), []);
    store.applyYaml(entry('c'));
    assert.deepEqual(store.allocatedAddresses('c.example.com'), ['240.240.0.1', '2001:2::1']);
  });

  it('skips an address of the range that a user gave an entry', () => {
    const store = new MeshConfigStore();
    store.applyYaml(entry('user', { addresses: ['240.240.0.1'] }) + '---\n' + entry('auto'));
    assert.deepEqual(store.allocatedAddresses('auto.example.com'), ['240.240.0.2', '2001:2::1']);
  });

  it('reassigns an entry whose allocated address a user then claims', () => {
    const store = new MeshConfigStore();
    store.applyYaml(entry('auto'));
    store.applyYaml(entry('user', { addresses: ['240.240.0.1'] }));
    assert.deepEqual(store.allocatedAddresses('auto.example.com'), ['240.240.0.2', '2001:2::2']);
  });

  it('allocates from configured prefixes', () => {
    const store = new MeshConfigStore({ ipv4Prefix: '10.200.0.0/24', ipv6Prefix: 'fd00:1::/64' });
    store.applyYaml(entry('a'));
    assert.deepEqual(store.allocatedAddresses('a.example.com'), ['10.200.0.1', 'fd00:1::1']);
  });

  it('keeps WorkloadGroups in creation order and finds them by namespace and name', () => {
    const store = new MeshConfigStore();
    const group = (name: string): string =>
      `apiVersion: networking.istio.io/v1\nkind: WorkloadGroup\nmetadata: {name: ${name}, namespace: istio-demo}\nspec:\n  template: {serviceAccount: vm}\n`;
    const change = store.applyYaml(group('b') + '---\n' + group('a'));
    assert.deepEqual(change, { serviceEntries: false, workloadGroups: true, kubernetesServices: false });
    assert.deepEqual(
      store.workloadGroups.map((g) => g.metadata.name),
      ['b', 'a'],
    );
    assert.equal(store.workloadGroup('istio-demo', 'a')?.spec.template.serviceAccount, 'vm');
    assert.equal(store.workloadGroup('other', 'a'), undefined);
    assert.equal(store.deleteYaml(group('a')).workloadGroups, true);
    assert.equal(store.workloadGroup('istio-demo', 'a'), undefined);
  });

  it('applies nothing from YAML with an error in any document', () => {
    const store = new MeshConfigStore();
    assert.throws(() => store.applyYaml(entry('good') + '---\n' + entry('bad', { hosts: [] })), ConfigErrors);
    assert.deepEqual(store.serviceEntries, []);
  });

  it('hands out frozen resources', () => {
    const store = new MeshConfigStore();
    store.applyYaml(entry('a'));
    const [stored] = store.serviceEntries;
    assert.ok(stored && Object.isFrozen(stored.spec.hosts) && Object.isFrozen(stored.status.addresses));
  });

  it('rejects a malformed Kubernetes service, naming the field', () => {
    const store = new MeshConfigStore();
    assert.throws(
      () => store.setKubernetesServices([{ host: 'reviews.bookinfo.svc.cluster.local', namespace: 'bookinfo', vips: ['10.0.0.300'] }]),
      /setKubernetesServices: services\[0\]\.vips\[0\]: "10\.0\.0\.300" is not an IP address/,
    );
  });
});

describe('PrefixAllocator', () => {
  it('formats addresses as Go does', () => {
    for (const text of ['240.240.0.1', '2001:2::1', '2001:db8::', '::', '::1', '1:0:0:1:0:0:0:1', '2001:db8:0:1:1:1:1:1', '::ffff:1.2.3.4']) {
      const ip = parseIp(text);
      assert.ok(ip, text);
    }
    const roundTrip = (text: string): string => formatIp(parseIp(text) ?? assert.fail(text));
    assert.equal(roundTrip('2001:0002:0000:0000:0000:0000:0000:0001'), '2001:2::1');
    assert.equal(roundTrip('1:0:0:1:0:0:0:1'), '1:0:0:1::1');
    assert.equal(roundTrip('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1');
    assert.equal(roundTrip('::'), '::');
    assert.equal(roundTrip('FE80::ABCD'), 'fe80::abcd');
    assert.equal(parseIp('010.0.0.1'), undefined);
    assert.equal(parseIp('fe80::1%eth0'), undefined);
  });

  it('wraps around once, then reports the prefix exhausted', () => {
    const allocator = new PrefixAllocator('10.0.0.0/30');
    const take = (): string => formatIp(allocator.allocate('ns/a'));
    assert.deepEqual([take(), take(), take()], ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    assert.throws(take, /10\.0\.0\.0\/30 is exhausted/);
    allocator.free(parseIp('10.0.0.2') ?? assert.fail(), 'ns/a');
    assert.equal(take(), '10.0.0.2');
  });

  it('reports a second owner claiming an address as a conflict', () => {
    const allocator = new PrefixAllocator('240.240.0.0/16');
    const ip = parseIp('240.240.0.7') ?? assert.fail();
    assert.deepEqual(allocator.markUsed(ip, 'ns/a'), { isConflict: false });
    assert.deepEqual(allocator.markUsed(ip, 'ns/a'), { isConflict: false });
    assert.deepEqual(allocator.markUsed(ip, 'ns/b'), { isConflict: true });
    assert.deepEqual(allocator.markUsed(parseIp('10.0.0.1') ?? assert.fail(), 'ns/b'), { isConflict: false }, 'outside the prefix');
  });
});
