import assert from 'node:assert/strict';
import type { NameInfo, NameTable } from '../proto/index.js';
import { QTYPE, buildQuery, decodeResponse, type DecodedResponse } from './dns-test-support.js';
import { LookupTable, splitIps, type LookupTableOptions } from './lookup-table.js';
import { NameIndex, hashName } from './name-index.js';
import { MAX_TCP_SIZE, QueryParser, answerResponse, encodeName } from './wire.js';

const OPTIONS: LookupTableOptions = { proxyNamespace: 'ns1', proxyDomain: 'ns1.svc.cluster.local', searchDomain: 'ns1.svc.cluster.local' };

function entry(ips: string[], registry = 'External', extra: Partial<NameInfo> = {}): NameInfo {
  return { ips, registry, shortname: '', namespace: '', alt_hosts: [], ...extra };
}

function build(table: NameTable['table'], options: LookupTableOptions = OPTIONS): LookupTable {
  return LookupTable.build({ table }, options);
}

/** What the server would answer for `name` (spelled as given) from `table`, decoded. */
function resolve(table: LookupTable, name: string, qtype: number = QTYPE.A, limit = MAX_TCP_SIZE): DecodedResponse | undefined {
  const query = buildQuery(name, qtype);
  const parser = new QueryParser();
  parser.parse(query);
  const host = table.find(parser.name, parser.nameLength, parser.hash);
  if (!host) return undefined;
  return decodeResponse(answerResponse(query, parser.questionEnd, host, qtype === QTYPE.A ? host.a : host.aaaa, limit, false, 0));
}

function records(table: LookupTable, name: string, qtype: number = QTYPE.A): string[] | undefined {
  return resolve(table, name, qtype)?.answers.map((r) => `${r.name} ${r.type === 5 ? 'CNAME' : r.type === 1 ? 'A' : 'AAAA'} ${r.data}`);
}

describe('LookupTable', () => {
  it('serves a Kubernetes service under its FQDN, name.namespace, name.namespace.svc and, in our namespace, its short name', () => {
    const table = build({
      'productpage.ns1.svc.cluster.local': entry(['9.9.9.9'], 'Kubernetes', { shortname: 'productpage', namespace: 'ns1' }),
      'reviews.ns2.svc.cluster.local': entry(['10.0.0.2'], 'Kubernetes', { shortname: 'reviews', namespace: 'ns2', alt_hosts: ['reviews.alt'] }),
    });
    for (const name of ['productpage.ns1.svc.cluster.local.', 'productpage.ns1.', 'productpage.ns1.svc.', 'productpage.']) {
      assert.deepEqual(records(table, name), [`${name} A 9.9.9.9`], name);
    }
    for (const name of ['reviews.ns2.svc.cluster.local.', 'reviews.ns2.', 'reviews.ns2.svc.', 'reviews.alt.']) {
      assert.deepEqual(records(table, name), [`${name} A 10.0.0.2`], name);
    }
    assert.equal(table.lookup('reviews.'), undefined, 'no short name outside our namespace');
  });

  it('gives a service of another cluster domain only its FQDN', () => {
    const table = build({ 'details.ns1.svc.cluster.remote': entry(['1.2.3.4'], 'Kubernetes', { shortname: 'details', namespace: 'ns1', alt_hosts: ['d.alt'] }) });
    assert.ok(table.lookup('details.ns1.svc.cluster.remote.'));
    assert.equal(table.lookup('details.ns1.'), undefined);
    assert.equal(table.lookup('details.'), undefined);
    assert.equal(table.lookup('d.alt.'), undefined);
  });

  it('uses the proxy domain as a whole when it does not start with the namespace', () => {
    const table = build(
      { 'a.ns1.corp.example': entry(['1.2.3.4'], 'Kubernetes', { shortname: 'a', namespace: 'ns1' }) },
      { proxyNamespace: 'ns1', proxyDomain: 'corp.example' },
    );
    assert.ok(table.lookup('a.ns1.corp.'));
    assert.ok(table.lookup('a.'));
  });

  it('lowercases names and skips invalid addresses and entries without any', () => {
    const table = build({
      'MiXeD.Example.COM': entry(['1.1.1.1', 'bogus', '300.1.1.1']),
      'none.example.com': entry(['nope']),
      'trailing.example.com.': entry(['2.2.2.2']),
    });
    assert.deepEqual(records(table, 'mixed.example.com.'), ['mixed.example.com. A 1.1.1.1']);
    assert.equal(table.lookup('none.example.com.'), undefined);
    assert.ok(table.lookup('trailing.example.com.'));
  });

  it('keeps only valid addresses, split by family', () => {
    const { v4, v6 } = splitIps(['1.2.3', '10.0.0.1', '1.2.3.4.5', '01.2.3.4', '256.1.1.1', '1.2.3.', '::1', 'fe80::1%eth0', 'x', '192.168.1.255']);
    assert.deepEqual(v4, [10, 0, 0, 1, 192, 168, 1, 255]);
    assert.deepEqual(v6, [...Array<number>(15).fill(0), 1, 0xfe, 0x80, ...Array<number>(13).fill(0), 1]);
  });

  it('splits IPv4 and IPv6 and answers the missing family with nothing', () => {
    const table = build({ 'v6.example.com': entry(['2001:db8::1', '::ffff:10.0.0.1']) });
    assert.deepEqual(records(table, 'v6.example.com.', QTYPE.A), []);
    assert.deepEqual(
      records(table, 'v6.example.com.', QTYPE.AAAA)?.sort(),
      ['v6.example.com. AAAA 0:0:0:0:0:ffff:a00:1', 'v6.example.com. AAAA 2001:db8:0:0:0:0:0:1'],
    );
  });

  it('adds the first search domain as a CNAME, except where it would be a name of its own or already ends with it', () => {
    const table = build({
      'www.google.com': entry(['1.1.1.1']),
      'productpage.ns1.svc.cluster.local': entry(['9.9.9.9'], 'Kubernetes', { shortname: 'productpage', namespace: 'ns1' }),
    });
    assert.deepEqual(records(table, 'www.google.com.ns1.svc.cluster.local.'), [
      'www.google.com.ns1.svc.cluster.local. CNAME www.google.com.',
      'www.google.com. A 1.1.1.1',
    ]);
    // productpage. + search = productpage.ns1.svc.cluster.local., an own name: plain A, no CNAME.
    assert.deepEqual(records(table, 'productpage.ns1.svc.cluster.local.'), ['productpage.ns1.svc.cluster.local. A 9.9.9.9']);
    assert.equal(table.lookup('productpage.ns1.svc.cluster.local.ns1.svc.cluster.local.'), undefined);
    assert.equal(build({ 'www.google.com': entry(['1.1.1.1']) }, { ...OPTIONS, searchDomain: undefined }).lookup('www.google.com.ns1.svc.cluster.local.'), undefined);
  });

  it('prefers the most specific wildcard and names the answer after the question', () => {
    const table = build({
      '*.example.com': entry(['1.1.1.1']),
      '*.deep.example.com': entry(['2.2.2.2']),
    });
    assert.deepEqual(records(table, 'a.example.com.'), ['a.example.com. A 1.1.1.1']);
    assert.deepEqual(records(table, 'a.b.deep.example.com.'), ['a.b.deep.example.com. A 2.2.2.2']);
    assert.deepEqual(records(table, 'Deep.Example.com.'), ['Deep.Example.com. A 1.1.1.1']);
    assert.equal(table.lookup('example.com.'), undefined);
    assert.equal(table.lookup('com.'), undefined);
    assert.equal(table.lookup('.'), undefined);
  });

  it('keeps the literal wildcard as the target of a search-domain CNAME, whatever the question length', () => {
    const table = build({ '*.example.com': entry(['1.1.1.1', '1.1.1.2']) });
    for (const name of ['a.example.com.ns1.svc.cluster.local.', 'a-much-longer-label.and.more.example.com.ns1.svc.cluster.local.']) {
      const lines = records(table, name)!;
      assert.equal(lines[0], `${name} CNAME *.example.com.`);
      assert.deepEqual(lines.slice(1).sort(), ['*.example.com. A 1.1.1.1', '*.example.com. A 1.1.1.2']);
    }
  });

  it('lets a later entry replace one address family of a name', () => {
    const table = build({
      'shared.example.com': entry(['1.1.1.1', '2001:db8::1']),
      'shared.example.com.': entry(['3.3.3.3']),
    });
    assert.deepEqual(records(table, 'shared.example.com.'), ['shared.example.com. A 3.3.3.3']);
    assert.deepEqual(records(table, 'shared.example.com.', QTYPE.AAAA), ['shared.example.com. AAAA 2001:db8:0:0:0:0:0:1']);
  });

  it('truncates to whole records and sets TC', () => {
    const ips = Array.from({ length: 100 }, (_, i) => `10.0.${i >> 8}.${i & 0xff}`);
    const table = build({ 'many.example.com': entry(ips) });
    const full = resolve(table, 'many.example.com.')!;
    assert.equal(full.answers.length, 100);
    assert.equal(full.truncated, false);
    const cut = resolve(table, 'many.example.com.', QTYPE.A, 512)!;
    assert.equal(cut.truncated, true);
    // 12 header + 22 question, 16 per record.
    assert.equal(cut.answers.length, Math.floor((512 - 34) / 16));
    const cname = resolve(table, 'many.example.com.ns1.svc.cluster.local.', QTYPE.A, 512)!;
    assert.equal(cname.truncated, true);
    assert.equal(cname.answers[0]!.type, 5);
    assert.ok(cname.answers.slice(1).every((r) => r.name === 'many.example.com.'));
  });

  it('rotates the first address between responses', () => {
    const table = build({ 'rr.example.com': entry(['1.1.1.1', '1.1.1.2', '1.1.1.3']) });
    const firsts = new Set(Array.from({ length: 3 }, () => records(table, 'rr.example.com.')![0]));
    assert.equal(firsts.size, 3);
  });
});

describe('NameIndex', () => {
  it('finds keys by bytes and hash, and nothing else', () => {
    const keys = Array.from({ length: 500 }, (_, i) => encodeName(`host-${i}.example.com`)!);
    const index = new NameIndex(keys.map((k, i) => [k.toString('latin1'), i] as const));
    keys.forEach((k, i) => assert.equal(index.get(k, 0, k.length, hashName(k, 0, k.length)), i));
    const other = encodeName('host-500.example.com')!;
    assert.equal(index.get(other, 0, other.length, hashName(other, 0, other.length)), undefined);
    const empty = new NameIndex<number>([]);
    assert.equal(empty.get(other, 0, other.length, hashName(other, 0, other.length)), undefined);
  });
});
