import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { readFile, stat } from 'node:fs/promises';
import net from 'node:net';
import { AgentError, errorMessage } from '../errors.js';
import type { Component } from '../lifecycle.js';
import type { Logger } from '../log/index.js';
import type { AgentMetrics } from '../metrics/index.js';
import type { Any, NameInfo, NameTable, ProtoSchema } from '../proto/index.js';
import type { DnsConfig } from '../config/types.js';
import { NAME_TABLE_TYPE_URL, type AgentTypeHandler } from '../xds/index.js';
import { formatIp, ipBytes } from '../net/index.js';
import { LookupTable, altHosts, domainParts } from './lookup-table.js';
import { joinHostPort, parseResolvConf, splitHostPort, type ResolvConf } from './resolv-conf.js';
import { UpstreamForwarder, parseUpstream, type Transport } from './upstream.js';
import { loadUdpBatch, type UdpBatchEndpoint, type UdpBatchModule } from './udp-batch.js';
import {
  HEADER_LENGTH,
  MAX_TCP_SIZE,
  MIN_UDP_SIZE,
  PARSE_BADVERS,
  PARSE_DROP,
  PARSE_FORMERR,
  PARSE_NOTIMP,
  PARSE_OK,
  QueryParser,
  RCODE_BADVERS,
  RCODE_FORMERR,
  RCODE_NOTIMP,
  RCODE_SERVFAIL,
  TYPE_A,
  TYPE_AAAA,
  answerResponse,
  errorResponse,
} from './wire.js';

/** Readiness error while DNS is on and no NameTable has arrived (SPEC §6.7, §9.2). */
export const DNS_NOT_READY_MESSAGE = 'istio DNS capture is turned ON and DNS lookup table is not ready yet';
export const DEFAULT_DNS_ADDRESS = 'localhost:15053';
/** The original resolv.conf when the agent itself answers on :53 as root (Docker / VMs without iptables). */
export const ROOT_RESOLV_CONF_PATH = '/var/lib/istio/resolv.conf';
const UPSTREAM_PORT = 53;
/** Idle TCP connections are closed after this long (miekg/dns's default). */
const TCP_IDLE_TIMEOUT_MS = 8_000;
/** Bigger than the default so bursts (dnsperf, a pod's parallel A+AAAA) are not dropped by the kernel. */
const UDP_BUFFER_BYTES = 4 << 20;
/**
 * Upstream exchanges in flight at most (each holds a socket): a flood of unknown names gets SERVFAIL
 * beyond this instead of exhausting file descriptors. Istio has no such bound.
 */
const MAX_INFLIGHT_FORWARDS = 1024;
/** With port 0, UDP and TCP share the ephemeral port the first socket got; retry if TCP finds it taken. */
const EPHEMERAL_BIND_ATTEMPTS = 10;

const FORWARD = Symbol('forward');
type Outcome = Buffer | typeof FORWARD | undefined;

export interface DnsServerDeps {
  config: DnsConfig;
  proxyNamespace: string;
  /** e.g. `istio-demo.svc.cluster.local`; its leading namespace label is ignored. */
  proxyDomain: string;
  schema: ProtoSchema;
  /** [dns] */
  log: Logger;
  metrics?: AgentMetrics;
  /** Running as uid 0: decides the `:53` rules of SPEC §6.1. */
  isRoot?: boolean;
  /**
   * Test-only: upstream servers (`ip:port`) used instead of resolv.conf's nameservers on port 53
   * (resolv.conf has no ports). resolv.conf is still read, for the search domain and the bind family.
   */
  upstreams?: string[];
  /**
   * Read UDP with the native recvmmsg/sendmmsg endpoint when it is available (default). false: always
   * node:dgram, one callback and one send per datagram (the fallback, tested on its own).
   */
  udpBatching?: boolean;
}

interface BindTarget {
  address: string;
  family: 4 | 6;
}

/**
 * The DNS proxy on 15053 (UDP and TCP): answers names of the mesh from istiod's NameTable with Istio's
 * lookup semantics, forwards everything else to the resolv.conf servers.
 *
 * The composition root builds it only when DNS capture (or ENABLE_DNS_SERVER) is on; `config.enabled`
 * is not consulted here.
 *
 * Hit path: a NameTable compiles into per-name answer sections already in wire form; a query is parsed in
 * place (header, first question, OPT), looked up by its lowercased wire name, and answered by copying the
 * header fields, the client's question and one precomputed answer ordering into one buffer.
 */
export class DnsServer implements Component {
  readonly name = 'dns';
  readonly handler: AgentTypeHandler = {
    onResource: (resource: Any) => this.#onResource(resource),
  };

  readonly #deps: DnsServerDeps;
  readonly #parser = new QueryParser();
  readonly #stop = new AbortController();
  /** Closes each bound UDP socket (dgram or native). */
  readonly #udp: (() => Promise<void>)[] = [];
  readonly #tcp: net.Server[] = [];
  readonly #connections = new Set<net.Socket>();
  readonly #inflight = new Set<Promise<void>>();
  readonly #addresses: { udp: string[]; tcp: string[] } = { udp: [], tcp: [] };
  #table: LookupTable | undefined;
  /** How to get the installed NameTable back (its encoded bytes, or the object given to updateNameTable). */
  #nameTableSource: (() => NameTable) | undefined;
  #searchDomain: string | undefined;
  #forwarder: UpstreamForwarder | undefined;
  /** `:53` as root: the agent is the host's resolver, so it forwards even before the first table. */
  #respondBeforeSync = false;
  #starting: Promise<void> | undefined;
  #closing = false;
  #closed: Promise<void> | undefined;

  constructor(deps: DnsServerDeps) {
    this.#deps = deps;
  }

  /** Readiness: a NameTable has been received. */
  get hasTable(): boolean {
    return this.#table !== undefined;
  }

  /** Where the server listens (`host:port`, IPv6 bracketed), with the real ports. */
  get addresses(): { udp: string[]; tcp: string[] } {
    return { udp: [...this.#addresses.udp], tcp: [...this.#addresses.tcp] };
  }

  start(signal: AbortSignal): Promise<void> {
    if (this.#closing) return Promise.reject(new Error('DNS server is closed'));
    return (this.#starting ??= this.#start(signal));
  }

  close(): Promise<void> {
    return (this.#closed ??= this.#shutdown());
  }

  /** Replaces the table atomically; the previous one stays in service until this returns. */
  updateNameTable(table: NameTable): void {
    this.#install(table, () => table);
  }

  /**
   * Builds the lookup table and keeps a way back to the NameTable (for /debug/ndsz and for a rebuild
   * once resolv.conf's search domain is known). Tables from istiod are kept as their encoded bytes, a
   * fraction of the decoded objects' size: 6 MB rather than ~48 MB for 100,000 names.
   */
  #install(table: NameTable, source: () => NameTable): void {
    const { proxyNamespace, proxyDomain } = this.#deps;
    const built = LookupTable.build(table, { proxyNamespace, proxyDomain, searchDomain: this.#searchDomain });
    this.#table = built;
    this.#nameTableSource = source;
    this.#deps.log.debug(`updated lookup table with ${built.size} hosts`);
  }

  /**
   * `/debug/ndsz`: the last NameTable with every generated name added as a `Kubernetes` entry, in
   * proto-JSON form (empty fields omitted); undefined before the first table.
   */
  debugNameTable(): unknown {
    const nt = this.#nameTableSource?.();
    if (!nt) return undefined;
    const entries = new Map<string, NameInfo>(Object.entries(nt.table ?? {}));
    const domain = domainParts(this.#deps);
    for (const [host, info] of Object.entries(nt.table ?? {})) {
      const addresses = (info.ips ?? []).flatMap((ip) => ipBytes(ip) ?? []);
      if (addresses.length === 0) continue;
      // IPv4 first, then IPv6, in Go's canonical text.
      const ips = [...addresses.filter((b) => b.length === 4), ...addresses.filter((b) => b.length === 16)].map(formatIp);
      for (const alt of altHosts(host, info, this.#deps.proxyNamespace, domain)) {
        if (entries.has(alt)) continue;
        entries.set(alt, { ips, registry: 'Kubernetes', shortname: '', namespace: '', alt_hosts: [] });
      }
    }
    const table: Record<string, Record<string, unknown>> = {};
    for (const host of [...entries.keys()].sort()) table[host] = nameInfoJson(entries.get(host)!);
    return { table };
  }

  #onResource(resource: Any): void {
    if (resource.type_url && resource.type_url !== NAME_TABLE_TYPE_URL) {
      throw new Error(`unexpected resource type ${resource.type_url}, want ${NAME_TABLE_TYPE_URL}`);
    }
    const codec = this.#deps.schema.nameTable;
    const bytes = Buffer.from(resource.value);
    let table: NameTable;
    try {
      table = codec.decodeMessage(bytes);
    } catch (err) {
      throw new Error(`failed to unmarshal NameTable: ${errorMessage(err)}`, { cause: err });
    }
    this.#install(table, () => codec.decode(bytes));
  }

  async #start(signal: AbortSignal): Promise<void> {
    const { config, log } = this.#deps;
    const plan = listenPlan(config.address, this.#deps.isRoot ?? false);
    if (plan.warning) log.error(plan.warning);
    const address = plan.address;
    this.#respondBeforeSync = plan.respondBeforeSync;
    const resolvConfPath = plan.respondBeforeSync && (await exists(ROOT_RESOLV_CONF_PATH)) ? ROOT_RESOLV_CONF_PATH : config.resolvConfPath;

    let resolv: ResolvConf;
    try {
      resolv = parseResolvConf(await readFile(resolvConfPath, 'utf8'));
    } catch (err) {
      throw new Error(`failed to start local DNS server: read ${resolvConfPath}: ${errorMessage(err)}`, { cause: err });
    }
    const upstreams = (this.#deps.upstreams ?? resolv.nameservers.map((ns) => joinHostPort(ns, UPSTREAM_PORT))).map(parseUpstream);
    this.#searchDomain = resolv.search[0];
    log.debug('initialized DNS', { search: resolv.search, servers: upstreams.map((u) => u.label) });
    this.#forwarder = new UpstreamForwarder({
      upstreams,
      parallel: config.forwardParallel,
      timeoutMs: config.forwardTimeoutMs,
      log,
      signal: this.#stop.signal,
    });
    // A table that arrived before start was compiled without the search domain.
    const source = this.#nameTableSource;
    if (source) this.#install(source(), source);

    const hostPort = splitHostPort(address);
    if (!hostPort) throw new Error(`failed to start local DNS server: dns address must be a valid host:port, got ${JSON.stringify(address)}`);
    const targets = await Promise.all(listenHosts(hostPort.host, resolv.nameservers).map(bindTarget));
    const batching = this.#deps.udpBatching === false ? { reason: 'turned off' } : loadUdpBatch();
    if (batching.module) log.debug('udp DNS reads datagrams in batches (recvmmsg/sendmmsg)');
    else log.info(`udp DNS uses node:dgram, one datagram at a time: batched UDP unavailable: ${batching.reason ?? 'unknown'}`);
    const udpBatch = batching.module;
    for (let attempt = 1; ; attempt++) {
      this.#checkRunning(signal);
      try {
        await this.#bindAll(targets, hostPort.port, signal, udpBatch);
        break;
      } catch (err) {
        await this.#closeSockets();
        const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
        if (hostPort.port === 0 && inUse && attempt < EPHEMERAL_BIND_ATTEMPTS && !this.#closing) continue;
        if (err instanceof AgentError || this.#closing || signal.aborted) throw err;
        throw new AgentError('SOCKET_LISTEN_FAILED', `failed to start local DNS server: ${errorMessage(err)}`, { cause: err });
      }
    }
    for (const udp of this.#addresses.udp) log.info(`Starting local udp DNS server on ${udp}`);
    for (const tcp of this.#addresses.tcp) log.info(`Starting local tcp DNS server on ${tcp}`);
  }

  #checkRunning(signal: AbortSignal): void {
    signal.throwIfAborted();
    if (this.#closing) throw new Error('DNS server closed while starting');
  }

  async #bindAll(targets: readonly BindTarget[], requestedPort: number, signal: AbortSignal, udpBatch: UdpBatchModule | undefined): Promise<void> {
    let port = requestedPort;
    const udp: string[] = [];
    const tcp: string[] = [];
    for (const target of targets) {
      this.#checkRunning(signal);
      // The native endpoint takes plain IP literals; a scoped IPv6 address (fe80::1%eth0) stays on node:dgram.
      const batched = udpBatch && !target.address.includes('%');
      const udpPort = batched ? this.#listenUdpBatched(udpBatch, target, port) : await this.#listenUdp(target, port);
      if (port === 0) port = udpPort;
      udp.push(joinHostPort(target.address, udpPort));
      this.#checkRunning(signal);
      tcp.push(joinHostPort(target.address, await this.#listenTcp(target, port)));
    }
    this.#addresses.udp = udp;
    this.#addresses.tcp = tcp;
  }

  async #listenUdp(target: BindTarget, port: number): Promise<number> {
    const socket = dgram.createSocket({
      type: target.family === 6 ? 'udp6' : 'udp4',
      // Replies go to the literal address a query came from: skip dgram's per-send lookup and its tick.
      lookup: (hostname, _options, callback) => callback(null, hostname, target.family),
    });
    this.#udp.push(
      () =>
        new Promise<void>((resolve) => {
          try {
            socket.close(() => resolve());
          } catch {
            resolve(); // never bound
          }
        }),
    );
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, target.address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    try {
      socket.setRecvBufferSize(UDP_BUFFER_BYTES);
      socket.setSendBufferSize(UDP_BUFFER_BYTES);
    } catch {
      // Capped by net.core.[rw]mem_max; the default still works.
    }
    // A failed send (the client went away) must not take the listener down.
    socket.on('error', (err) => this.#deps.log.debug(`udp DNS socket error: ${err.message}`));
    socket.on('message', (msg, rinfo) => this.#onUdpMessage(socket, msg, rinfo));
    return socket.address().port;
  }

  /** The same UDP service on the native endpoint: one call per batch of up to 64 datagrams. */
  #listenUdpBatched(udpBatch: UdpBatchModule, target: BindTarget, port: number): number {
    const { slotBytes, addrBytes } = udpBatch;
    let rx: Buffer | undefined;
    const endpoint: UdpBatchEndpoint = udpBatch.open(target.address, port, UDP_BUFFER_BYTES, (count) => {
      rx ??= Buffer.from(endpoint.rx.buffer, endpoint.rx.byteOffset, endpoint.rx.byteLength);
      this.#onUdpBatch(endpoint, rx, slotBytes, addrBytes, count);
    });
    this.#udp.push(() => {
      endpoint.close();
      return Promise.resolve();
    });
    return endpoint.port;
  }

  #onUdpBatch(endpoint: UdpBatchEndpoint, rx: Buffer, slotBytes: number, addrBytes: number, count: number): void {
    const lengths = endpoint.lengths;
    for (let i = 0; i < count; i++) {
      const length = lengths[i]!;
      // -1: larger than a slot (4 KB); like dnsmasq, such a query is not read at all.
      if (length < 0) continue;
      const msg = rx.subarray(i * slotBytes, i * slotBytes + length);
      const outcome = this.#answer(msg, 'udp');
      if (outcome === undefined) continue;
      if (outcome !== FORWARD) {
        endpoint.reply(i, outcome);
        continue;
      }
      // The slots are reused by the next batch: the forward keeps copies of the query and the sender.
      const query = Buffer.from(msg);
      const addr = Buffer.from(endpoint.addrs.subarray(i * addrBytes, (i + 1) * addrBytes));
      this.#track(
        this.#forward(query, 'udp', this.#parser.questionEnd, this.#parser.hasEdns).then((reply) => {
          if (!this.#closing) endpoint.sendTo(reply, addr);
        }),
      );
    }
  }

  async #listenTcp(target: BindTarget, port: number): Promise<number> {
    const server = net.createServer({ noDelay: true }, (socket) => this.#onTcpConnection(socket));
    this.#tcp.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host: target.address }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.#deps.log.warn(`tcp DNS server error: ${err.message}`));
    return (server.address() as net.AddressInfo).port;
  }

  /**
   * Everything that can be answered synchronously: the response, FORWARD for the upstreams, or
   * undefined to drop. Leaves the parser's fields describing the query.
   */
  #answer(msg: Buffer, transport: Transport): Outcome {
    const parser = this.#parser;
    const status = parser.parse(msg);
    if (status === PARSE_DROP) return undefined;
    this.#deps.metrics?.dnsRequests.inc();
    const prefix = transport === 'tcp' ? 2 : 0;
    if (status !== PARSE_OK) return errorResponse(msg, rcodeFor(status), 0, parser.hasEdns, prefix);
    const table = this.#table;
    if (table === undefined) {
      return this.#respondBeforeSync ? FORWARD : errorResponse(msg, RCODE_SERVFAIL, parser.questionEnd, parser.hasEdns, prefix);
    }
    const qtype = parser.qtype;
    // Other types go upstream whether or not the name is known (Istio answers only A and AAAA).
    if (qtype !== TYPE_A && qtype !== TYPE_AAAA) return FORWARD;
    const host = table.find(parser.name, parser.nameLength, parser.hash);
    if (host === undefined) return FORWARD;
    const limit = transport === 'tcp' ? MAX_TCP_SIZE : parser.hasEdns && parser.ednsSize > MIN_UDP_SIZE ? parser.ednsSize : MIN_UDP_SIZE;
    return answerResponse(msg, parser.questionEnd, host, qtype === TYPE_A ? host.a : host.aaaa, limit, parser.hasEdns, prefix);
  }

  #onUdpMessage(socket: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const outcome = this.#answer(msg, 'udp');
    if (outcome === undefined) return;
    if (outcome !== FORWARD) {
      socket.send(outcome, rinfo.port, rinfo.address);
      return;
    }
    const { port, address } = rinfo;
    this.#track(
      this.#forward(msg, 'udp', this.#parser.questionEnd, this.#parser.hasEdns).then((reply) => {
        if (!this.#closing) socket.send(reply, port, address);
      }),
    );
  }

  #onTcpConnection(socket: net.Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    this.#connections.add(socket);
    socket.setTimeout(TCP_IDLE_TIMEOUT_MS, () => socket.destroy());
    socket.on('close', () => this.#connections.delete(socket));
    // Resets by clients are routine; 'close' follows.
    socket.on('error', () => undefined);
    let pending: Buffer | undefined;
    socket.on('data', (chunk: Buffer) => {
      const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
      let off = 0;
      socket.cork();
      try {
        while (buf.length - off >= 2) {
          const length = (buf[off]! << 8) | buf[off + 1]!;
          // Shorter than a header: not DNS framing, and nothing after it can be trusted.
          if (length < HEADER_LENGTH) {
            socket.destroy();
            return;
          }
          if (buf.length - off - 2 < length) break;
          this.#onTcpQuery(socket, buf.subarray(off + 2, off + 2 + length));
          off += 2 + length;
        }
      } finally {
        socket.uncork();
      }
      pending = off < buf.length ? buf.subarray(off) : undefined;
    });
  }

  #onTcpQuery(socket: net.Socket, msg: Buffer): void {
    const outcome = this.#answer(msg, 'tcp');
    if (outcome === undefined) return;
    if (outcome !== FORWARD) {
      socket.write(outcome);
      return;
    }
    this.#track(
      this.#forward(msg, 'tcp', this.#parser.questionEnd, this.#parser.hasEdns).then((reply) => {
        if (!socket.writable) return;
        const framed = Buffer.allocUnsafe(2 + reply.length);
        framed.writeUInt16BE(reply.length, 0);
        reply.copy(framed, 2);
        socket.write(framed);
      }),
    );
  }

  /** The upstreams' reply as is, or SERVFAIL when none replied. */
  async #forward(query: Buffer, transport: Transport, questionEnd: number, edns: boolean): Promise<Buffer> {
    const metrics = this.#deps.metrics;
    if (this.#inflight.size >= MAX_INFLIGHT_FORWARDS) {
      this.#deps.log.debug('too many upstream queries in flight, answering SERVFAIL');
      return errorResponse(query, RCODE_SERVFAIL, questionEnd, edns, 0);
    }
    metrics?.dnsUpstreamRequests.inc();
    const started = performance.now();
    const reply = await this.#forwarder!.forward(query, transport);
    metrics?.dnsUpstreamRequestDuration.observe((performance.now() - started) / 1000);
    if (reply) return reply;
    metrics?.dnsUpstreamFailures.inc();
    return errorResponse(query, RCODE_SERVFAIL, questionEnd, edns, 0);
  }

  /** Keeps a forward in the set close() waits for; it never rejects. */
  #track(task: Promise<void>): void {
    const tracked = task.catch((err: unknown) => this.#deps.log.warn(`DNS forwarding failed: ${errorMessage(err)}`));
    this.#inflight.add(tracked);
    void tracked.then(() => this.#inflight.delete(tracked));
  }

  async #shutdown(): Promise<void> {
    this.#closing = true;
    this.#stop.abort();
    await this.#starting?.catch(() => undefined);
    await this.#closeSockets();
    await Promise.all([...this.#inflight]);
  }

  async #closeSockets(): Promise<void> {
    for (const socket of this.#connections) socket.destroy();
    this.#connections.clear();
    const udp = this.#udp.splice(0);
    const tcp = this.#tcp.splice(0);
    await Promise.all([
      ...udp.map((close) => close()),
      ...tcp.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    ]);
    this.#addresses.udp = [];
    this.#addresses.tcp = [];
  }
}

function rcodeFor(status: number): number {
  switch (status) {
    case PARSE_NOTIMP:
      return RCODE_NOTIMP;
    case PARSE_BADVERS:
      return RCODE_BADVERS;
    case PARSE_FORMERR:
      return RCODE_FORMERR;
    default:
      return RCODE_SERVFAIL; // no question (SPEC §6.4 step 1)
  }
}

/**
 * SPEC §6.1, the `:53` rules: as root the agent is the host's resolver (no iptables redirect), so it
 * answers even before the first table and prefers /var/lib/istio/resolv.conf; otherwise it falls back to
 * the default address.
 */
export function listenPlan(configured: string, isRoot: boolean): { address: string; respondBeforeSync: boolean; warning?: string } {
  const address = configured || DEFAULT_DNS_ADDRESS;
  if (!address.endsWith(':53')) return { address, respondBeforeSync: false };
  if (isRoot) return { address, respondBeforeSync: true };
  return { address: DEFAULT_DNS_ADDRESS, respondBeforeSync: false, warning: 'DNS address :53 and not running as root, use default' };
}

/**
 * SPEC §6.1: `localhost` means 127.0.0.1 if resolv.conf has an IPv4 nameserver and ::1 if it has an
 * IPv6 one (both in dual stack); otherwise the host as given.
 */
export function listenHosts(host: string, nameservers: readonly string[]): string[] {
  if (host !== 'localhost' || nameservers.length === 0) return [host];
  const out: string[] = [];
  if (nameservers.some((ns) => net.isIPv4(ns))) out.push('127.0.0.1');
  if (nameservers.some((ns) => net.isIPv6(ns.split('%')[0]!))) out.push('::1');
  return out.length ? out : [host];
}

async function bindTarget(host: string): Promise<BindTarget> {
  if (host === '') return { address: '0.0.0.0', family: 4 };
  const family = net.isIP(host);
  if (family === 4 || family === 6) return { address: host, family };
  // A name (e.g. `localhost` with no nameserver to decide by): the system resolver picks, as Go's Listen does.
  const resolved = await lookup(host);
  return { address: resolved.address, family: resolved.family === 6 ? 6 : 4 };
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

/** proto-JSON of a NameInfo: camelCase names, default values omitted. */
function nameInfoJson(info: NameInfo): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (info.ips?.length) out['ips'] = info.ips;
  if (info.registry) out['registry'] = info.registry;
  if (info.shortname) out['shortname'] = info.shortname;
  if (info.namespace) out['namespace'] = info.namespace;
  if (info.alt_hosts?.length) out['altHosts'] = info.alt_hosts;
  return out;
}
