import dgram from 'node:dgram';
import net from 'node:net';
import { listenOn } from '../../test/support/ports.js';

/** A query as the fake upstream received it. */
export interface ReceivedQuery {
  transport: 'udp' | 'tcp';
  bytes: Buffer;
  /** Dotted, as sent (case kept). */
  name: string;
  qtype: number;
}

/** The address the fake answers for names under `upstream.test.` (TEST-NET-2, never a real host). */
export const FAKE_UPSTREAM_ADDRESS = '198.51.100.55';
export const FAKE_UPSTREAM_TXT = 'from-upstream';

/**
 * Test-only: a tiny resolver on 127.0.0.1 (UDP and TCP on one port) standing in for the resolv.conf
 * servers, so tests never reach the machine's resolver. It answers A for `*.upstream.test.` with
 * FAKE_UPSTREAM_ADDRESS, TXT for any name with FAKE_UPSTREAM_TXT, NXDOMAIN otherwise, and records every
 * query. `silent` makes it swallow queries (an upstream that times out).
 */
export class FakeUpstream {
  readonly received: ReceivedQuery[] = [];
  silent = false;
  #udp: dgram.Socket | undefined;
  #tcp: net.Server | undefined;
  readonly #connections = new Set<net.Socket>();
  port = 0;

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const udp = dgram.createSocket('udp4');
      await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
      const port = udp.address().port;
      const tcp = net.createServer((socket) => this.#onConnection(socket));
      try {
        await listenOn(tcp, port);
      } catch (err) {
        udp.close();
        if (attempt < 10) continue;
        throw err;
      }
      udp.on('message', (msg, rinfo) => {
        const reply = this.#reply(msg, 'udp');
        if (reply) udp.send(reply, rinfo.port, rinfo.address);
      });
      this.#udp = udp;
      this.#tcp = tcp;
      this.port = port;
      return;
    }
  }

  async close(): Promise<void> {
    for (const socket of this.#connections) socket.destroy();
    const udp = this.#udp;
    const tcp = this.#tcp;
    this.#udp = undefined;
    this.#tcp = undefined;
    await Promise.all([
      udp && new Promise<void>((resolve) => udp.close(() => resolve())),
      tcp && new Promise<void>((resolve) => tcp.close(() => resolve())),
    ]);
  }

  #onConnection(socket: net.Socket): void {
    this.#connections.add(socket);
    socket.on('close', () => this.#connections.delete(socket));
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        const reply = this.#reply(Buffer.from(msg), 'tcp');
        if (!reply) continue;
        const framed = Buffer.alloc(2 + reply.length);
        framed.writeUInt16BE(reply.length, 0);
        reply.copy(framed, 2);
        socket.write(framed);
      }
    });
  }

  #reply(msg: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined {
    if (msg.length < 12) return undefined;
    const labels: string[] = [];
    let off = 12;
    while (off < msg.length && msg[off] !== 0) {
      labels.push(msg.toString('latin1', off + 1, off + 1 + msg[off]!));
      off += 1 + msg[off]!;
    }
    const questionEnd = off + 5;
    if (questionEnd > msg.length) return undefined;
    const name = `${labels.join('.')}.`;
    const qtype = msg.readUInt16BE(off + 1);
    this.received.push({ transport, bytes: Buffer.from(msg), name, qtype });
    if (this.silent) return undefined;

    let answer: Buffer | undefined;
    if (qtype === 16) {
      const text = Buffer.from(FAKE_UPSTREAM_TXT);
      answer = Buffer.concat([record(16, 1 + text.length), Buffer.from([text.length]), text]);
    } else if (qtype === 1 && name.toLowerCase().endsWith('.upstream.test.')) {
      answer = Buffer.concat([record(1, 4), Buffer.from(FAKE_UPSTREAM_ADDRESS.split('.').map(Number))]);
    }
    const header = Buffer.from(msg.subarray(0, 12));
    header[2] = 0x80 | (msg[2]! & 0x01);
    header[3] = 0x80 | (answer ? 0 : 3); // NOERROR or NXDOMAIN
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answer ? 1 : 0, 6);
    header.writeUInt16BE(0, 8);
    header.writeUInt16BE(0, 10);
    return Buffer.concat([header, msg.subarray(12, questionEnd), answer ?? Buffer.alloc(0)]);
  }
}

/** Record header with its owner a pointer to the question, class IN, TTL 60. */
function record(type: number, rdlength: number): Buffer {
  const out = Buffer.alloc(12);
  out.writeUInt16BE(0xc00c, 0);
  out.writeUInt16BE(type, 2);
  out.writeUInt16BE(1, 4);
  out.writeUInt32BE(60, 6);
  out.writeUInt16BE(rdlength, 10);
  return out;
}
