import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { LogCapture } from '../../test/support/log-capture.js';
import { TempDirs } from '../../test/support/tmp.js';
import type { DnsConfig } from '../config/types.js';
import { AgentMetrics } from '../metrics/index.js';
import { ProtoSchema, type NameInfo, type NameTable } from '../proto/index.js';
import { NAME_TABLE_TYPE_URL } from '../xds/index.js';
import { DnsServer, DNS_NOT_READY_MESSAGE, listenHosts, listenPlan } from './index.js';
import { loadUdpBatch } from './udp-batch.js';
import {
  QTYPE,
  answerCount,
  answerLines,
  buildQuery,
  dig,
  dig6,
  frame,
  isTruncated,
  rcodeOf,
  tcpExchange,
  udpExchange,
  type DigResult,
} from './dns-test-support.js';
import { FAKE_UPSTREAM_ADDRESS, FAKE_UPSTREAM_TXT, FakeUpstream } from './fake-upstream.js';

const SEARCH = 'ns1.svc.cluster.local svc.cluster.local cluster.local';

function info(ips: string[], registry = 'External', extra: Partial<NameInfo> = {}): NameInfo {
  return { ips, registry, shortname: '', namespace: '', alt_hosts: [], ...extra };
}

function kube(ips: string[], shortname: string, namespace: string, altHosts: string[] = []): NameInfo {
  return info(ips, 'Kubernetes', { shortname, namespace, alt_hosts: altHosts });
}

const BIG_IPS = Array.from({ length: 200 }, (_, i) => `10.1.${i >> 8}.${i & 0xff}`);

/** Shapes like Istio's own DNS test fixture, with names and addresses of our own. */
function fixture(): NameTable {
  return {
    table: {
      'www.google.com': info(['1.1.1.1']),
      'productpage.ns1.svc.cluster.local': kube(['9.9.9.9'], 'productpage', 'ns1'),
      'reviews.ns2.svc.cluster.local': kube(['10.10.10.10'], 'reviews', 'ns2'),
      'example.ns2.svc.cluster.local': kube(['10.10.10.20'], 'example', 'ns2', ['example.localhost']),
      'details.ns2.svc.cluster.remote': kube(['11.11.11.11', '12.12.12.12', '13.13.13.13', '14.14.14.14'], 'details', 'ns2'),
      'ipv6.localhost': info(['2001:db8:0:0:0:ff00:42:8329']),
      'dual.localhost': info(['2.2.2.2', '2001:db8::2']),
      'ipv4.localhost': info(['2.2.2.2']),
      '*.wildcard.example.com': info(['10.10.10.10']),
      '*.nested.wildcard.example.com': info(['11.11.11.11']),
      'big.example.com': info(BIG_IPS),
      'no-valid-ip.example.com': info(['not-an-ip']),
    },
  };
}

interface Harness {
  server: DnsServer;
  port: number;
  capture: LogCapture;
  upstream: FakeUpstream;
}

interface HarnessOptions {
  table?: NameTable | undefined;
  upstreams?: string[];
  parallel?: boolean;
  timeoutMs?: number;
  resolvConf?: string;
  address?: string;
  metrics?: AgentMetrics;
  udpBatching?: boolean;
}

/** Servers, upstreams and directories of one suite, closed in `cleanup`. */
class Fixture {
  readonly #dirs = new TempDirs();
  readonly #closers: Array<() => Promise<void>> = [];
  readonly schema = new ProtoSchema();

  async start(options: HarnessOptions = {}): Promise<Harness> {
    const upstream = new FakeUpstream();
    await upstream.start();
    this.#closers.push(() => upstream.close());
    const dir = this.#dirs.make('dns-');
    const resolvConfPath = path.join(dir, 'resolv.conf');
    writeFileSync(resolvConfPath, options.resolvConf ?? `nameserver 127.0.0.1\nsearch ${SEARCH}\n`);
    const capture = new LogCapture();
    const config: DnsConfig = {
      enabled: true,
      address: options.address ?? '127.0.0.1:0',
      forwardParallel: options.parallel ?? false,
      forwardTimeoutMs: options.timeoutMs ?? 1000,
      resolvConfPath,
    };
    const server = new DnsServer({
      config,
      proxyNamespace: 'ns1',
      proxyDomain: 'ns1.svc.cluster.local',
      schema: this.schema,
      log: capture.root.scope('dns'),
      upstreams: options.upstreams ?? [upstream.address],
      ...(options.metrics ? { metrics: options.metrics } : {}),
      ...(options.udpBatching !== undefined ? { udpBatching: options.udpBatching } : {}),
    });
    this.#closers.push(() => server.close());
    await server.start(new AbortController().signal);
    if (options.table !== undefined) server.updateNameTable(options.table);
    const port = Number(server.addresses.udp[0]!.split(':').pop());
    return { server, port, capture, upstream };
  }

  async cleanup(): Promise<void> {
    for (const close of this.#closers.splice(0).reverse()) await close();
    this.#dirs.cleanup();
  }
}

interface Case {
  name: string;
  type?: 'A' | 'AAAA' | 'TXT';
  status?: string;
  authoritative?: boolean;
  answers: string[];
}

const CASES: Case[] = [
  { name: 'www.google.com.', answers: ['www.google.com. A 1.1.1.1'] },
  { name: 'WWW.Google.COM.', answers: ['WWW.Google.COM. A 1.1.1.1'] },
  {
    name: 'www.google.com.ns1.svc.cluster.local.',
    answers: ['www.google.com. A 1.1.1.1', 'www.google.com.ns1.svc.cluster.local. CNAME www.google.com.'],
  },
  { name: 'productpage.ns1.svc.cluster.local.', answers: ['productpage.ns1.svc.cluster.local. A 9.9.9.9'] },
  { name: 'productpage.', answers: ['productpage. A 9.9.9.9'] },
  { name: 'productpage.ns1.', answers: ['productpage.ns1. A 9.9.9.9'] },
  { name: 'productpage.ns1.svc.', answers: ['productpage.ns1.svc. A 9.9.9.9'] },
  {
    name: 'productpage.ns1.ns1.svc.cluster.local.',
    answers: ['productpage.ns1. A 9.9.9.9', 'productpage.ns1.ns1.svc.cluster.local. CNAME productpage.ns1.'],
  },
  {
    name: 'productpage.ns1.svc.ns1.svc.cluster.local.',
    answers: ['productpage.ns1.svc. A 9.9.9.9', 'productpage.ns1.svc.ns1.svc.cluster.local. CNAME productpage.ns1.svc.'],
  },
  // Already ends in the first search domain: no CNAME for it, so it is not a known name.
  { name: 'productpage.ns1.svc.cluster.local.ns1.svc.cluster.local.', status: 'NXDOMAIN', authoritative: false, answers: [] },
  { name: 'reviews.ns2.svc.cluster.local.', answers: ['reviews.ns2.svc.cluster.local. A 10.10.10.10'] },
  { name: 'reviews.ns2.', answers: ['reviews.ns2. A 10.10.10.10'] },
  { name: 'reviews.ns2.svc.', answers: ['reviews.ns2.svc. A 10.10.10.10'] },
  // Another namespace: no short name, the query goes upstream.
  { name: 'reviews.', status: 'NXDOMAIN', authoritative: false, answers: [] },
  { name: 'example.localhost.', answers: ['example.localhost. A 10.10.10.20'] },
  { name: 'example.ns2.', answers: ['example.ns2. A 10.10.10.20'] },
  // Another cluster's domain: only the FQDN.
  {
    name: 'details.ns2.svc.cluster.remote.',
    answers: ['11.11.11.11', '12.12.12.12', '13.13.13.13', '14.14.14.14'].map((ip) => `details.ns2.svc.cluster.remote. A ${ip}`),
  },
  { name: 'details.ns2.', status: 'NXDOMAIN', authoritative: false, answers: [] },
  { name: 'ipv6.localhost.', type: 'AAAA', answers: ['ipv6.localhost. AAAA 2001:db8::ff00:42:8329'] },
  { name: 'ipv6.localhost.', type: 'A', answers: [] },
  { name: 'ipv4.localhost.', type: 'AAAA', answers: [] },
  { name: 'dual.localhost.', type: 'A', answers: ['dual.localhost. A 2.2.2.2'] },
  { name: 'dual.localhost.', type: 'AAAA', answers: ['dual.localhost. AAAA 2001:db8::2'] },
  {
    name: 'dual.localhost.ns1.svc.cluster.local.',
    type: 'AAAA',
    answers: ['dual.localhost. AAAA 2001:db8::2', 'dual.localhost.ns1.svc.cluster.local. CNAME dual.localhost.'],
  },
  // A CNAME whose target has no address of the asked family: empty, without the CNAME (as Istio).
  { name: 'ipv4.localhost.ns1.svc.cluster.local.', type: 'AAAA', answers: [] },
  { name: 'foo.wildcard.example.com.', answers: ['foo.wildcard.example.com. A 10.10.10.10'] },
  { name: 'a.b.wildcard.example.com.', answers: ['a.b.wildcard.example.com. A 10.10.10.10'] },
  { name: 'foo.nested.wildcard.example.com.', answers: ['foo.nested.wildcard.example.com. A 11.11.11.11'] },
  {
    name: 'foo.wildcard.example.com.ns1.svc.cluster.local.',
    answers: ['*.wildcard.example.com. A 10.10.10.10', 'foo.wildcard.example.com.ns1.svc.cluster.local. CNAME *.wildcard.example.com.'],
  },
  {
    name: 'x.y.nested.wildcard.example.com.ns1.svc.cluster.local.',
    answers: ['*.nested.wildcard.example.com. A 11.11.11.11', 'x.y.nested.wildcard.example.com.ns1.svc.cluster.local. CNAME *.nested.wildcard.example.com.'],
  },
  // The wildcard's own parent does not match it.
  { name: 'wildcard.example.com.', status: 'NXDOMAIN', authoritative: false, answers: [] },
  // Not A/AAAA: upstream answers, even for known names.
  { name: 'www.google.com.', type: 'TXT', authoritative: false, answers: [`www.google.com. TXT "${FAKE_UPSTREAM_TXT}"`] },
  { name: 'something.upstream.test.', authoritative: false, answers: [`something.upstream.test. A ${FAKE_UPSTREAM_ADDRESS}`] },
  { name: 'no-valid-ip.example.com.', status: 'NXDOMAIN', authoritative: false, answers: [] },
];

function assertCase(c: Case, result: DigResult): void {
  const label = `${c.name} ${c.type ?? 'A'}\n${result.output}`;
  assert.equal(result.status, c.status ?? 'NOERROR', label);
  assert.deepEqual(answerLines(result), [...c.answers].sort(), label);
  if (c.authoritative ?? true) {
    assert.ok(result.flags.includes('aa'), `not authoritative: ${label}`);
    for (const a of result.answers) assert.equal(a.ttl, 30, label);
  } else {
    assert.ok(!result.flags.includes('aa'), `authoritative: ${label}`);
  }
}

describe('DnsServer', function () {
  this.timeout(30_000);

  const transports = [
    { label: 'udp', transport: 'udp', udpBatching: true },
    { label: 'udp via node:dgram (the fallback without the native endpoint)', transport: 'udp', udpBatching: false },
    { label: 'tcp', transport: 'tcp', udpBatching: true },
  ] as const;
  for (const { label, transport, udpBatching } of transports) {
    describe(`answering over ${label}`, () => {
      const fx = new Fixture();
      let h: Harness;
      before(async () => {
        h = await fx.start({ table: fixture(), udpBatching });
      });
      after(() => fx.cleanup());

      for (const c of CASES) {
        it(`${c.name} ${c.type ?? 'A'} → ${c.answers.length ? c.answers.length + ' answer(s)' : c.status ?? 'NOERROR, empty'}`, async () => {
          const options = transport === 'tcp' ? ['+tcp'] : [];
          assertCase(c, await dig(h.port, c.name, c.type ?? 'A', ...options));
        });
      }

      it('answers a CNAME first, then the target addresses', async () => {
        const result = await dig(h.port, 'www.google.com.ns1.svc.cluster.local.', 'A', ...(transport === 'tcp' ? ['+tcp'] : []));
        assert.deepEqual(result.answers.map((a) => a.type), ['CNAME', 'A']);
      });

      it('forwards unknown names over the client transport', async () => {
        const before = h.upstream.received.length;
        await dig(h.port, `via-${transport}.upstream.test.`, 'A', ...(transport === 'tcp' ? ['+tcp'] : []));
        const got = h.upstream.received.slice(before).find((q) => q.name === `via-${transport}.upstream.test.`);
        assert.equal(got?.transport, transport);
      });
    });
  }

  describe('behaviour', () => {
    const fx = new Fixture();
    afterEach(() => fx.cleanup());

    it('answers SERVFAIL to everything before the first table, and is not ready', async () => {
      const h = await fx.start();
      assert.equal(h.server.hasTable, false);
      assert.equal(DNS_NOT_READY_MESSAGE, 'istio DNS capture is turned ON and DNS lookup table is not ready yet');
      for (const name of ['www.google.com.', 'something.upstream.test.']) {
        assert.equal((await dig(h.port, name, 'A')).status, 'SERVFAIL');
        assert.equal((await dig(h.port, name, 'A', '+tcp')).status, 'SERVFAIL');
      }
      assert.equal(h.upstream.received.length, 0);
    });

    it('serves a new table from the next query on, and keeps the last one', async () => {
      const h = await fx.start({ table: fixture() });
      assert.equal(h.server.hasTable, true);
      assert.deepEqual(answerLines(await dig(h.port, 'www.google.com.', 'A')), ['www.google.com. A 1.1.1.1']);
      h.server.updateNameTable({ table: { 'www.google.com': info(['3.3.3.3']) } });
      assert.deepEqual(answerLines(await dig(h.port, 'www.google.com.', 'A')), ['www.google.com. A 3.3.3.3']);
      assert.equal((await dig(h.port, 'productpage.', 'A')).status, 'NXDOMAIN', 'old names are gone (forwarded)');
    });

    it('installs NameTables from the xDS handler and NACKs invalid ones', async () => {
      const h = await fx.start();
      const valid = fx.schema.nameTable.encode({ table: { 'www.google.com': info(['4.4.4.4']) } });
      h.server.handler.onResource({ type_url: NAME_TABLE_TYPE_URL, value: valid });
      assert.equal(h.server.hasTable, true);
      assert.deepEqual(answerLines(await dig(h.port, 'www.google.com.', 'A')), ['www.google.com. A 4.4.4.4']);

      assert.throws(() => h.server.handler.onResource({ type_url: NAME_TABLE_TYPE_URL, value: Buffer.from([0x0a, 0xff, 0x01]) }), /NameTable/);
      assert.throws(() => h.server.handler.onResource({ type_url: 'type.googleapis.com/istio.mesh.v1alpha1.ProxyConfig', value: valid }), /unexpected resource type/);
      assert.deepEqual(answerLines(await dig(h.port, 'www.google.com.', 'A')), ['www.google.com. A 4.4.4.4'], 'kept the last good table');
    });

    it('rotates the order of multi-address answers', async () => {
      const h = await fx.start({ table: fixture() });
      const firsts = new Set<string>();
      for (let i = 0; i < 8; i++) {
        const result = await dig(h.port, 'details.ns2.svc.cluster.remote.', 'A');
        assert.equal(result.answers.length, 4);
        firsts.add(result.answers[0]!.data);
      }
      assert.ok(firsts.size > 1, `always ${[...firsts].join()} first`);
    });

    it('truncates big answers to 512 bytes over UDP without EDNS, and to the EDNS size with it', async () => {
      const h = await fx.start({ table: fixture() });
      const plain = await dig(h.port, 'big.example.com.', 'A', '+noedns', '+ignore');
      assert.ok(plain.flags.includes('tc'), plain.output);
      assert.ok(plain.answers.length > 0 && plain.answers.length < BIG_IPS.length, `${plain.answers.length} answers`);

      const raw = await udpExchange(h.port, buildQuery('big.example.com', QTYPE.A));
      assert.ok(raw && raw.length <= 512 && isTruncated(raw), 'a plain UDP answer fits in 512 bytes');
      assert.equal(answerCount(raw), plain.answers.length);

      const edns = await udpExchange(h.port, buildQuery('big.example.com', QTYPE.A, { ednsSize: 1232 }));
      assert.ok(edns && edns.length <= 1232 && edns.length > 512 && isTruncated(edns));

      const big = await dig(h.port, 'big.example.com.', 'A', '+bufsize=4096', '+ignore');
      assert.ok(!big.flags.includes('tc'), big.output);
      assert.equal(big.answers.length, BIG_IPS.length);

      const tcp = await dig(h.port, 'big.example.com.', 'A', '+tcp');
      assert.ok(!tcp.flags.includes('tc'));
      assert.deepEqual(tcp.answers.map((a) => a.data).sort(), [...BIG_IPS].sort());
    });

    it('retries a truncated UDP answer over TCP and gets all of it (dig default)', async () => {
      const h = await fx.start({ table: fixture() });
      const result = await dig(h.port, 'big.example.com.', 'A', '+noedns');
      assert.equal(result.answers.length, BIG_IPS.length);
    });

    it('answers repeated queries with the same bytes except the ID', async () => {
      const h = await fx.start({ table: fixture() });
      const first = await udpExchange(h.port, buildQuery('www.google.com', QTYPE.A, { id: 1 }));
      const second = await udpExchange(h.port, buildQuery('www.google.com', QTYPE.A, { id: 2 }));
      assert.ok(first && second);
      assert.equal(first.readUInt16BE(0), 1);
      assert.equal(second.readUInt16BE(0), 2);
      assert.deepEqual(first.subarray(2), second.subarray(2));

      // Multi-address: same length, same records, possibly another order.
      const a = await udpExchange(h.port, buildQuery('details.ns2.svc.cluster.remote', QTYPE.A, { id: 3 }));
      const b = await udpExchange(h.port, buildQuery('details.ns2.svc.cluster.remote', QTYPE.A, { id: 4 }));
      assert.ok(a && b);
      assert.equal(a.length, b.length);
      const records = (r: Buffer): string[] => {
        const out: string[] = [];
        for (let off = r.length - 4 * 16; off < r.length; off += 16) out.push(r.subarray(off, off + 16).toString('hex'));
        return out.sort();
      };
      assert.deepEqual(records(a), records(b));
      assert.deepEqual(a.subarray(2, a.length - 64), b.subarray(2, b.length - 64));
    });

    it('echoes RD, sets QR, AA and RA, and answers EDNS with an OPT record', async () => {
      const h = await fx.start({ table: fixture() });
      const noRd = await udpExchange(h.port, buildQuery('www.google.com', QTYPE.A, { rd: false }));
      assert.ok(noRd);
      assert.equal(noRd[2]! & 0x01, 0);
      assert.equal(noRd[2]! & 0x84, 0x84);
      assert.equal(noRd[3]! & 0x80, 0x80);
      assert.equal(noRd.readUInt16BE(10), 0, 'no OPT without EDNS');
      const edns = await udpExchange(h.port, buildQuery('www.google.com', QTYPE.A, { ednsSize: 4096 }));
      assert.ok(edns);
      assert.equal(edns[2]! & 0x01, 0x01);
      assert.equal(edns.readUInt16BE(10), 1);
      assert.equal(edns.readUInt16BE(edns.length - 10), 41, 'OPT record last');
    });

    it('passes upstream replies through unchanged: same ID, same query bytes, NXDOMAIN included', async () => {
      const h = await fx.start({ table: fixture() });
      const query = buildQuery('Mixed.Upstream.test', QTYPE.A, { id: 0xbeef, ednsSize: 1232 });
      const reply = await udpExchange(h.port, query);
      assert.ok(reply);
      assert.equal(reply.readUInt16BE(0), 0xbeef);
      assert.equal(rcodeOf(reply), 0);
      assert.deepEqual(h.upstream.received.at(-1)?.bytes, query);

      const nx = await dig(h.port, 'nothing.example.', 'A');
      assert.equal(nx.status, 'NXDOMAIN');
    });

    it('answers SERVFAIL when the upstream is down, over UDP and TCP', async () => {
      const dead = new FakeUpstream();
      await dead.start();
      const deadAddress = dead.address;
      await dead.close();
      const h = await fx.start({ table: fixture(), upstreams: [deadAddress], timeoutMs: 500 });
      assert.equal((await dig(h.port, 'x.upstream.test.', 'A')).status, 'SERVFAIL');
      assert.equal((await dig(h.port, 'x.upstream.test.', 'A', '+tcp')).status, 'SERVFAIL');
      assert.equal(h.capture.find('upstream failure:').length, 2, h.capture.lines.join('\n'));
      // Still answers from the table.
      assert.deepEqual(answerLines(await dig(h.port, 'www.google.com.', 'A')), ['www.google.com. A 1.1.1.1']);
    });

    it('gives up on a silent upstream after DNS_FORWARD_TIMEOUT', async () => {
      const h = await fx.start({ table: fixture(), timeoutMs: 300 });
      h.upstream.silent = true;
      const started = Date.now();
      assert.equal((await dig(h.port, 'slow.upstream.test.', 'A')).status, 'SERVFAIL');
      assert.ok(Date.now() - started >= 250);
      await h.capture.waitFor('upstream failure: read udp');
    });

    it('tries the next upstream when one fails (sequential)', async () => {
      const dead = new FakeUpstream();
      await dead.start();
      const deadAddress = dead.address;
      await dead.close();
      const live = new FakeUpstream();
      await live.start();
      try {
        const h = await fx.start({ table: fixture(), upstreams: [deadAddress, live.address], timeoutMs: 500 });
        for (let i = 0; i < 4; i++) {
          assert.deepEqual(answerLines(await dig(h.port, `s${i}.upstream.test.`, 'A')), [`s${i}.upstream.test. A ${FAKE_UPSTREAM_ADDRESS}`]);
        }
        assert.equal(live.received.length, 4);
      } finally {
        await live.close();
      }
    });

    it('asks all upstreams at once with DNS_FORWARD_PARALLEL', async () => {
      const dead = new FakeUpstream();
      await dead.start();
      const deadAddress = dead.address;
      await dead.close();
      const h = await fx.start({ table: fixture(), upstreams: [deadAddress], parallel: true, timeoutMs: 500 });
      assert.equal((await dig(h.port, 'p.upstream.test.', 'A')).status, 'SERVFAIL');
      await h.capture.waitFor('all upstream failed');

      const h2 = await fx.start({ table: fixture(), parallel: true, timeoutMs: 500 });
      const second = new FakeUpstream();
      await second.start();
      try {
        const h3 = await fx.start({ table: fixture(), upstreams: [h2.upstream.address, second.address, deadAddress], parallel: true, timeoutMs: 500 });
        assert.deepEqual(answerLines(await dig(h3.port, 'par.upstream.test.', 'A')), [`par.upstream.test. A ${FAKE_UPSTREAM_ADDRESS}`]);
        assert.equal(h2.upstream.received.length + second.received.length, 2, 'both live upstreams were asked');
      } finally {
        await second.close();
      }
    });

    it('forwards through a real dnsmasq upstream', async function () {
      const port = await freeUdpPort();
      const dnsmasq = await startDnsmasq(port).catch(() => undefined);
      if (!dnsmasq) return this.skip();
      try {
        const h = await fx.start({ table: fixture(), upstreams: [`127.0.0.1:${port}`] });
        assert.deepEqual(answerLines(await dig(h.port, 'host.dnsmasq.test.', 'A')), ['host.dnsmasq.test. A 198.51.100.77']);
        assert.deepEqual(answerLines(await dig(h.port, 'host.dnsmasq.test.', 'A', '+tcp')), ['host.dnsmasq.test. A 198.51.100.77']);
        assert.deepEqual(answerLines(await dig(h.port, 'www.google.com.', 'A')), ['www.google.com. A 1.1.1.1']);
      } finally {
        dnsmasq.kill('SIGTERM');
        await new Promise((r) => dnsmasq.once('exit', r));
      }
    });

    it('counts requests and upstream requests', async () => {
      const metrics = new AgentMetrics();
      const dead = new FakeUpstream();
      await dead.start();
      const deadAddress = dead.address;
      await dead.close();
      const h = await fx.start({ table: fixture(), metrics });
      await dig(h.port, 'www.google.com.', 'A');
      await dig(h.port, 'm.upstream.test.', 'A');
      const text = await metrics.registry.metrics();
      assert.match(text, /^istio_agent_dns_requests_total 2$/m);
      assert.match(text, /^istio_agent_dns_upstream_requests_total 1$/m);
      assert.match(text, /^istio_agent_dns_upstream_failures_total 0$/m);
      assert.match(text, /^istio_agent_dns_upstream_request_duration_seconds_count 1$/m);
      assert.match(text, /istio_agent_dns_upstream_request_duration_seconds_bucket\{le="0.001"\}/);

      const failing = new AgentMetrics();
      const h2 = await fx.start({ table: fixture(), metrics: failing, upstreams: [deadAddress], timeoutMs: 300 });
      await dig(h2.port, 'm.upstream.test.', 'A');
      assert.match(await failing.registry.metrics(), /^istio_agent_dns_upstream_failures_total 1$/m);
    });

    it('reports SERVFAIL with no upstream at all', async () => {
      const h = await fx.start({ table: fixture(), upstreams: [] });
      assert.equal((await dig(h.port, 'x.upstream.test.', 'A')).status, 'SERVFAIL');
    });
  });

  describe('batched UDP', () => {
    const fx = new Fixture();
    afterEach(() => fx.cleanup());

    it('is built and loads here, so the other UDP tests exercise it', () => {
      const { module, reason } = loadUdpBatch();
      assert.ok(module, reason);
      assert.equal(module.batch, 64);
    });

    for (const udpBatching of [true, false]) {
      it(`answers a burst of 1000 queries, known and forwarded, each once with its own ID (${udpBatching ? 'batched' : 'node:dgram'})`, async () => {
        const h = await fx.start({ table: fixture(), udpBatching });
        const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
        const replies = new Map<number, Buffer>();
        const all = new Promise<void>((resolve) => {
          socket.on('message', (reply) => {
            const id = reply.readUInt16BE(0);
            assert.ok(!replies.has(id), `two replies for ${id}`);
            replies.set(id, reply);
            if (replies.size === 1000) resolve();
          });
        });
        await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
        for (let id = 0; id < 1000; id++) {
          const name = id % 10 === 9 ? `burst-${id}.upstream.test` : 'productpage';
          socket.send(buildQuery(name, QTYPE.A, { id }), h.port, '127.0.0.1');
        }
        const timeout = new Promise<void>((resolve) => setTimeout(resolve, 5000));
        await Promise.race([all, timeout]);
        socket.close();
        assert.equal(replies.size, 1000);
        for (const [id, reply] of replies) {
          assert.equal(rcodeOf(reply), 0, `query ${id}`);
          const answered = id % 10 === 9 ? FAKE_UPSTREAM_ADDRESS : '9.9.9.9';
          assert.equal([...reply.subarray(reply.length - 4)].join('.'), answered, `query ${id}`);
        }
      });
    }

    it('sends an answer bigger than its 4 KB send slot whole', async () => {
      const ips = Array.from({ length: 400 }, (_, i) => `10.2.${i >> 8}.${i & 0xff}`);
      const h = await fx.start({ table: { table: { 'huge.example.com': info(ips) } } });
      const reply = await udpExchange(h.port, buildQuery('huge.example.com', QTYPE.A, { ednsSize: 65000 }));
      assert.ok(reply && reply.length > 4096, `${reply?.length} bytes`);
      assert.ok(!isTruncated(reply));
      assert.equal(answerCount(reply), 400);
    });

    it('does not read a datagram bigger than 4 KB (as dnsmasq), and keeps answering', async () => {
      const h = await fx.start({ table: fixture() });
      const query = Buffer.concat([buildQuery('www.google.com', QTYPE.A), Buffer.alloc(5000)]);
      assert.equal(await udpExchange(h.port, query, 300), undefined);
      assert.deepEqual(answerLines(await dig(h.port, 'www.google.com.', 'A')), ['www.google.com. A 1.1.1.1']);
    });

    it('says when it uses node:dgram instead', async () => {
      const h = await fx.start({ table: fixture(), udpBatching: false });
      assert.equal(h.capture.find('udp DNS uses node:dgram, one datagram at a time: batched UDP unavailable: turned off').length, 1);
    });
  });

  describe('malformed input', () => {
    const fx = new Fixture();
    let h: Harness;
    before(async () => {
      h = await fx.start({ table: fixture() });
    });
    after(() => fx.cleanup());

    async function assertStillAnswering(): Promise<void> {
      assert.deepEqual(answerLines(await dig(h.port, 'www.google.com.', 'A')), ['www.google.com. A 1.1.1.1']);
    }

    const header = (qdcount: number, flags2 = 0x01): Buffer => {
      const b = Buffer.alloc(12);
      b.writeUInt16BE(0x4242, 0);
      b[2] = flags2;
      b.writeUInt16BE(qdcount, 4);
      return b;
    };

    it('drops datagrams shorter than a header, and responses', async () => {
      assert.equal(await udpExchange(h.port, Buffer.from([1, 2, 3, 4, 5]), 300), undefined);
      const response = buildQuery('www.google.com', QTYPE.A);
      response[2]! |= 0x80;
      assert.equal(await udpExchange(h.port, response, 300), undefined);
      await assertStillAnswering();
    });

    it('answers SERVFAIL to a query without a question', async () => {
      const reply = await udpExchange(h.port, header(0));
      assert.ok(reply);
      assert.equal(reply.readUInt16BE(0), 0x4242);
      assert.equal(rcodeOf(reply), 2);
    });

    const formerrs: Array<[string, Buffer]> = [
      ['a compression pointer in the question', Buffer.concat([header(1), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])])],
      ['a pointer to itself', Buffer.concat([header(1), Buffer.from([3, 0x61, 0x62, 0x63, 0xc0, 12 + 4, 0, 1, 0, 1])])],
      ['a label longer than 63 bytes', Buffer.concat([header(1), Buffer.from([64]), Buffer.alloc(64, 0x61), Buffer.from([0, 0, 1, 0, 1])])],
      ['a name longer than 255 bytes', Buffer.concat([header(1), ...Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)])), Buffer.from([0, 0, 1, 0, 1])])],
      ['a name running past the end', Buffer.concat([header(1), Buffer.from([10, 0x61, 0x62])])],
      ['a question without type and class', Buffer.concat([header(1), Buffer.from([1, 0x61, 0, 0])])],
      ['an additional record running past the end', (() => {
        const q = buildQuery('www.google.com', QTYPE.A, { ednsSize: 1232 });
        return q.subarray(0, q.length - 3);
      })()],
    ];
    for (const [what, packet] of formerrs) {
      it(`answers FORMERR to ${what}`, async () => {
        const reply = await udpExchange(h.port, packet);
        assert.ok(reply, 'no reply');
        assert.equal(rcodeOf(reply), 1);
        assert.equal(reply.readUInt16BE(0), packet.readUInt16BE(0));
        await assertStillAnswering();
      });
    }

    it('answers NOTIMP to other opcodes and BADVERS to EDNS versions above 0', async () => {
      const notimp = await udpExchange(h.port, buildQuery('www.google.com', QTYPE.A, { opcode: 2 }));
      assert.ok(notimp);
      assert.equal(rcodeOf(notimp), 4);
      const badvers = await udpExchange(h.port, buildQuery('www.google.com', QTYPE.A, { ednsSize: 1232, ednsVersion: 1 }));
      assert.ok(badvers);
      // BADVERS = 16: 0 in the header, 1 in the OPT record's extended rcode.
      assert.equal(rcodeOf(badvers), 0);
      assert.equal(badvers.readUInt16BE(10), 1);
      assert.equal(badvers[badvers.length - 6], 1);
      assert.equal(answerCount(badvers), 0);
    });

    it('survives random garbage', async () => {
      const socket = dgram.createSocket('udp4');
      let seed = 7;
      const random = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
      for (let i = 0; i < 2000; i++) {
        const packet = Buffer.alloc(Math.floor(random() * 120));
        for (let j = 0; j < packet.length; j++) packet[j] = Math.floor(random() * 256);
        if (packet.length > 2 && i % 2 === 0) packet[2]! &= 0x07; // mostly queries, to get past the first checks
        socket.send(packet, h.port, '127.0.0.1');
      }
      await new Promise((r) => setTimeout(r, 200));
      socket.close();
      await assertStillAnswering();
    });

    it('answers several framed queries on one TCP connection', async () => {
      const q1 = buildQuery('www.google.com', QTYPE.A, { id: 1 });
      const q2 = buildQuery('x.upstream.test', QTYPE.A, { id: 2 });
      const q3 = buildQuery('productpage', QTYPE.A, { id: 3 });
      // Split mid-frame too, as a stream may deliver it.
      const bytes = Buffer.concat([frame(q1), frame(q2), frame(q3)]);
      const { replies } = await tcpExchange(h.port, bytes, 3, 3000);
      assert.deepEqual(replies.map((r) => r.readUInt16BE(0)).sort(), [1, 2, 3]);
      for (const r of replies) assert.equal(rcodeOf(r), 0);
    });

    it('closes a TCP connection with a garbage length prefix and keeps serving', async () => {
      const zero = await tcpExchange(h.port, Buffer.from([0, 0, 1, 2, 3]), 1);
      assert.equal(zero.closed, true);
      assert.equal(zero.replies.length, 0);
      const partial = await tcpExchange(h.port, Buffer.from([0xff, 0xff, 1, 2, 3]), 1, 300);
      assert.equal(partial.replies.length, 0);
      await assertStillAnswering();
      assert.equal((await dig(h.port, 'www.google.com.', 'A', '+tcp')).status, 'NOERROR');
    });
  });

  describe('lifecycle', () => {
    const fx = new Fixture();
    const dirs = new TempDirs();
    afterEach(async () => {
      await fx.cleanup();
      dirs.cleanup();
    });

    function bare(resolvConfPath: string, address = '127.0.0.1:0'): { server: DnsServer; capture: LogCapture } {
      const capture = new LogCapture();
      const server = new DnsServer({
        config: { enabled: true, address, forwardParallel: false, forwardTimeoutMs: 500, resolvConfPath },
        proxyNamespace: 'ns1',
        proxyDomain: 'ns1.svc.cluster.local',
        schema: fx.schema,
        log: capture.root.scope('dns'),
      });
      return { server, capture };
    }

    it('fails to start without resolv.conf', async () => {
      const { server } = bare(path.join(dirs.make(), 'missing.conf'));
      await assert.rejects(server.start(new AbortController().signal), /^Error: failed to start local DNS server/);
      await server.close();
    });

    it('logs where it listens, on one port for UDP and TCP', async () => {
      const dir = dirs.make();
      writeFileSync(path.join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
      const { server, capture } = bare(path.join(dir, 'resolv.conf'), 'localhost:0');
      try {
        await server.start(new AbortController().signal);
        const { udp, tcp } = server.addresses;
        assert.equal(udp.length, 1);
        assert.match(udp[0]!, /^127\.0\.0\.1:\d+$/);
        assert.deepEqual(tcp, udp);
        await capture.waitFor(`Starting local udp DNS server on ${udp[0]}`);
        await capture.waitFor(`Starting local tcp DNS server on ${tcp[0]}`);
      } finally {
        await server.close();
      }
      assert.deepEqual(server.addresses, { udp: [], tcp: [] });
    });

    it('listens on ::1 too when resolv.conf has an IPv6 nameserver', async () => {
      const dir = dirs.make();
      writeFileSync(path.join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\nnameserver ::1\n');
      const { server } = bare(path.join(dir, 'resolv.conf'), 'localhost:0');
      try {
        await server.start(new AbortController().signal);
        const port = Number(server.addresses.udp[0]!.split(':').pop());
        assert.deepEqual(server.addresses.udp, [`127.0.0.1:${port}`, `[::1]:${port}`]);
        server.updateNameTable(fixture());
        assert.deepEqual(answerLines(await dig6(port, 'www.google.com.', 'A')), ['www.google.com. A 1.1.1.1']);
      } finally {
        await server.close();
      }
    });

    it('closes idempotently, before or after start', async () => {
      const dir = dirs.make();
      writeFileSync(path.join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
      const never = bare(path.join(dir, 'resolv.conf')).server;
      await never.close();
      await never.close();
      await assert.rejects(never.start(new AbortController().signal));

      const { server } = bare(path.join(dir, 'resolv.conf'));
      await server.start(new AbortController().signal);
      const port = Number(server.addresses.udp[0]!.split(':').pop());
      await Promise.all([server.close(), server.close()]);
      assert.equal(await udpExchange(port, buildQuery('www.google.com', QTYPE.A), 200), undefined);
    });

    it('decides addresses as SPEC §6.1 says', () => {
      assert.deepEqual(listenHosts('localhost', ['10.0.0.2']), ['127.0.0.1']);
      assert.deepEqual(listenHosts('localhost', ['fd00::2']), ['::1']);
      assert.deepEqual(listenHosts('localhost', ['10.0.0.2', 'fe80::1%eth0']), ['127.0.0.1', '::1']);
      assert.deepEqual(listenHosts('localhost', []), ['localhost']);
      assert.deepEqual(listenHosts('0.0.0.0', ['10.0.0.2']), ['0.0.0.0']);

      assert.deepEqual(listenPlan('localhost:15053', false), { address: 'localhost:15053', respondBeforeSync: false });
      assert.deepEqual(listenPlan('', false), { address: 'localhost:15053', respondBeforeSync: false });
      assert.deepEqual(listenPlan('localhost:53', true), { address: 'localhost:53', respondBeforeSync: true });
      assert.deepEqual(listenPlan('localhost:53', false), {
        address: 'localhost:15053',
        respondBeforeSync: false,
        warning: 'DNS address :53 and not running as root, use default',
      });
    });

    it('shows the table with generated names in /debug/ndsz form', async () => {
      const { server } = bare('/nonexistent');
      assert.equal(server.debugNameTable(), undefined);
      server.updateNameTable({
        table: {
          'productpage.ns1.svc.cluster.local': kube(['9.9.9.9', '2001:db8:0::1'], 'productpage', 'ns1'),
          'www.google.com': info(['1.1.1.1']),
          'bad.example.com': info(['nope']),
        },
      });
      assert.deepEqual(server.debugNameTable(), {
        table: {
          'bad.example.com': { ips: ['nope'], registry: 'External' },
          'productpage.': { ips: ['9.9.9.9', '2001:db8::1'], registry: 'Kubernetes' },
          'productpage.ns1.': { ips: ['9.9.9.9', '2001:db8::1'], registry: 'Kubernetes' },
          'productpage.ns1.svc.': { ips: ['9.9.9.9', '2001:db8::1'], registry: 'Kubernetes' },
          'productpage.ns1.svc.cluster.local': { ips: ['9.9.9.9', '2001:db8:0::1'], registry: 'Kubernetes', shortname: 'productpage', namespace: 'ns1' },
          'productpage.ns1.svc.cluster.local.': { ips: ['9.9.9.9', '2001:db8::1'], registry: 'Kubernetes' },
          'www.google.com': { ips: ['1.1.1.1'], registry: 'External' },
          'www.google.com.': { ips: ['1.1.1.1'], registry: 'Kubernetes' },
        },
      });
      await server.close();
    });
  });
});

async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** dnsmasq in the foreground on loopback, answering only `dnsmasq.test` (never the machine's resolver). */
async function startDnsmasq(port: number): Promise<ChildProcess> {
  const child = spawn(
    'dnsmasq',
    ['--no-daemon', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--no-resolv', '--no-hosts', '--address=/dnsmasq.test/198.51.100.77', '--log-facility=/dev/null'],
    { stdio: 'ignore' },
  );
  const failed = new Promise<never>((_, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`dnsmasq exited with ${code}`)));
  });
  const deadline = Date.now() + 5000;
  for (;;) {
    const probe = await Promise.race([dig(port, 'probe.dnsmasq.test.', 'A'), failed]);
    if (probe.status === 'NOERROR') return child;
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      throw new Error('dnsmasq did not answer');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
