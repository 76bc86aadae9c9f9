import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import net from 'node:net';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/index.js';
import { shuffled } from './lookup-table.js';
import { HEADER_LENGTH } from './wire.js';
import { joinHostPort, splitHostPort } from './resolv-conf.js';

export type Transport = 'udp' | 'tcp';

export interface Upstream {
  host: string;
  port: number;
  /** `host:port`, for logs. */
  label: string;
}

/** Parses `ip:port` / `[ip6]:port`. */
export function parseUpstream(address: string): Upstream {
  const parsed = splitHostPort(address);
  if (!parsed || parsed.host === '') throw new Error(`invalid DNS upstream ${JSON.stringify(address)}: want ip:port`);
  return { host: parsed.host, port: parsed.port, label: joinHostPort(parsed.host, parsed.port) };
}

/** A reply to `query`: long enough, a response, and carrying the query's ID. */
function isReplyTo(reply: Buffer, query: Buffer): boolean {
  return reply.length >= HEADER_LENGTH && reply[0] === query[0] && reply[1] === query[1] && (reply[2]! & 0x80) !== 0;
}

type Settle = (err: Error | undefined, reply?: Buffer) => void;

/**
 * The shape both exchanges share: `open` starts one (and returns how to tear it down) and calls `settle`
 * with the reply or an error; the first of that, the timeout (`timeoutMessage`) and the signal wins.
 */
function exchange(name: string, timeoutMessage: string, timeoutMs: number, signal: AbortSignal, open: (settle: Settle) => () => void): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    if (signal.aborted) return reject(new Error(`${name}: aborted`));
    let settled = false;
    let teardown = (): void => undefined;
    const settle: Settle = (err, reply) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      teardown();
      if (err) reject(err);
      else resolve(reply!);
    };
    const onAbort = (): void => settle(new Error(`${name}: aborted`));
    const timer = setTimeout(() => settle(new Error(timeoutMessage)), timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    teardown = open(settle);
    if (settled) teardown(); // settled while opening: tear down what open() built
  });
}

/**
 * One exchange over a fresh UDP socket (a new source port per query, like Go's dns.Client), connected to
 * the upstream so only its datagrams are read. Resolves with the first datagram that answers `query`.
 */
export function exchangeUdp(query: Buffer, upstream: Upstream, timeoutMs: number, signal: AbortSignal): Promise<Buffer> {
  const name = `udp ${upstream.label}`;
  return exchange(name, `read ${name}: i/o timeout`, timeoutMs, signal, (settle) => {
    const socket = dgram.createSocket(isIPv6(upstream.host.split('%')[0]!) ? 'udp6' : 'udp4');
    socket.on('error', (err) => settle(new Error(`${name}: ${err.message}`)));
    socket.on('message', (reply) => {
      if (isReplyTo(reply, query)) settle(undefined, reply);
    });
    socket.connect(upstream.port, upstream.host, () => socket.send(query));
    return () => socket.close();
  });
}

/** One exchange over a fresh TCP connection: 2-byte length framing (RFC 1035 §4.2.2). */
export function exchangeTcp(query: Buffer, upstream: Upstream, timeoutMs: number, signal: AbortSignal): Promise<Buffer> {
  const name = `tcp ${upstream.label}`;
  return exchange(name, `${name}: i/o timeout`, timeoutMs, signal, (settle) => {
    const socket = net.connect({ host: upstream.host, port: upstream.port, noDelay: true });
    let received: Buffer = Buffer.alloc(0);
    socket.on('error', (err) => settle(new Error(`${name}: ${err.message}`)));
    socket.on('close', () => settle(new Error(`${name}: connection closed before a reply`)));
    socket.on('connect', () => {
      const framed = Buffer.allocUnsafe(2 + query.length);
      framed.writeUInt16BE(query.length, 0);
      query.copy(framed, 2);
      socket.write(framed);
    });
    socket.on('data', (chunk: Buffer) => {
      received = received.length ? Buffer.concat([received, chunk]) : chunk;
      while (received.length >= 2) {
        const length = received.readUInt16BE(0);
        if (received.length < 2 + length) return;
        const reply = received.subarray(2, 2 + length);
        received = received.subarray(2 + length);
        if (isReplyTo(reply, query)) return settle(undefined, Buffer.from(reply));
      }
    });
    return () => socket.destroy();
  });
}

export interface ForwarderOptions {
  upstreams: readonly Upstream[];
  /** DNS_FORWARD_PARALLEL: ask every upstream at once. */
  parallel: boolean;
  /** DNS_FORWARD_TIMEOUT, per upstream exchange. */
  timeoutMs: number;
  log: Logger;
  /** Aborted when the server closes: every exchange still under way ends at once. */
  signal: AbortSignal;
}

/**
 * Sends queries the table cannot answer to the resolv.conf servers, as they came (same ID, flags and
 * EDNS), over the client's transport. Upstream replies of any rcode are returned unchanged; undefined
 * means no upstream replied (the caller answers SERVFAIL). Nothing is cached.
 */
export class UpstreamForwarder {
  readonly #options: ForwarderOptions;

  constructor(options: ForwarderOptions) {
    this.#options = options;
  }

  forward(query: Buffer, transport: Transport): Promise<Buffer | undefined> {
    return this.#options.parallel ? this.#parallel(query, transport) : this.#sequential(query, transport);
  }

  #exchange(query: Buffer, transport: Transport, upstream: Upstream, signal: AbortSignal): Promise<Buffer> {
    const exchange = transport === 'udp' ? exchangeUdp : exchangeTcp;
    return exchange(query, upstream, this.#options.timeoutMs, signal);
  }

  async #sequential(query: Buffer, transport: Transport): Promise<Buffer | undefined> {
    const { log, signal } = this.#options;
    for (const upstream of shuffled(this.#options.upstreams)) {
      if (signal.aborted) return undefined;
      try {
        return await this.#exchange(query, transport, upstream, signal);
      } catch (err) {
        if (!signal.aborted) log.info(`upstream failure: ${errorMessage(err)}`);
      }
    }
    return undefined;
  }

  async #parallel(query: Buffer, transport: Transport): Promise<Buffer | undefined> {
    const { log, signal, upstreams } = this.#options;
    if (upstreams.length === 0) return undefined;
    // The first reply wins; the others are abandoned, their sockets closed.
    const done = new AbortController();
    const onStop = (): void => done.abort();
    signal.addEventListener('abort', onStop, { once: true });
    try {
      return await Promise.any(
        upstreams.map((upstream) =>
          this.#exchange(query, transport, upstream, done.signal).catch((err: unknown) => {
            if (!done.signal.aborted) log.info(`parallel querying upstream failure: ${errorMessage(err)}`);
            throw err;
          }),
        ),
      );
    } catch {
      if (!signal.aborted) log.info('all upstream failed');
      return undefined;
    } finally {
      signal.removeEventListener('abort', onStop);
      done.abort();
    }
  }
}
